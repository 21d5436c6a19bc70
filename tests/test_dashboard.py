"""The dashboard (dashboard/, embedded in the server) in headless Chromium against a real
server. The main test runs a simulator scenario (two people, one of whom falls and gets
up) and checks that the page connects, draws the scenario's people, raises the fall alert
and keeps it until acknowledged, and reconnects and draws again after the server restarts
on the same port; it saves the screenshot the README shows. The others cover the routes,
rendering of hand-made messages, a bad token and the token form."""

from __future__ import annotations

import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wifi_densepose import Server, sim
from wifi_densepose.testing import TEST_CONFIG

from tests.cdp import Browser

SHOT_DIR = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR", "/tmp"))
ENV = "room_001"
#: Oracle detections and the simulation are seeded: the same seed gives the same frames,
#: detections and decisions (analytics run on frame time, not on the wall clock).
SEED = 1


def scenario_two_people_one_falls() -> dict:
    """The named ``fall_recover`` scenario (walk, stand, fall forward, lie 4 s, get up,
    walk on), then standing, so that it falls once a run, with a second person walking to
    and fro along the far wall, more than 2 m from the fall (within 1 m of someone else
    the fall detector relies on the activity scores alone; docs/analytics.md)."""
    spec = sim.describe("fall_recover")
    faller = spec["people"][0]
    faller["start"] = [1.0, 1.0]
    faller["actions"][0]["to"] = [[2.0, 1.5]]
    faller["actions"].append({"type": "stand", "duration_s": 120.0})
    walker = {"start": [1.0, 4.2], "height": 1.62, "rcs_m2": 0.8,
              "actions": [{"type": "walk", "to": [[5.0, 4.2], [1.0, 4.2]], "speed": 1.0}]}
    spec.update(name="dashboard_two_people_fall", duration_s=60.0, people=[faller, walker])
    return spec


def person(track_id: int, cx: float, cy: float, activity: str = "walking") -> dict:
    """A COCO-17 skeleton standing at (cx, cy) in the normalized floor frame."""
    offsets = [
        (0, -0.12), (-0.01, -0.13), (0.01, -0.13), (-0.02, -0.125), (0.02, -0.125),
        (-0.04, -0.09), (0.04, -0.09), (-0.06, -0.04), (0.06, -0.04), (-0.065, 0.0),
        (0.065, 0.0), (-0.03, 0.0), (0.03, 0.0), (-0.03, 0.06), (0.03, 0.06),
        (-0.03, 0.12), (0.03, 0.12),
    ]
    names = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
    return {
        "person_id": track_id, "track_id": track_id, "confidence": 0.9,
        "keypoints": [{"name": n, "x": cx + dx, "y": cy + dy, "confidence": 0.9, "visible": True}
                      for n, (dx, dy) in zip(names, offsets)],
        "activity": {"type": activity, "confidence": 0.8},
    }


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


class Publisher(threading.Thread):
    """Publishes a scenario in a loop while the browser runs: two people walking in
    room_001, occupancy 2, and (after ``fall_after`` s) a fall of track 8."""

    def __init__(self, server: Server, fall_after: float = 1.5, duration: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.fall_after = fall_after
        self.duration = duration
        self.stop_event = threading.Event()
        self.frames = 0

    def run(self) -> None:
        start = time.monotonic()
        fell = False
        frame = 0
        while not self.stop_event.is_set() and time.monotonic() - start < self.duration:
            t = time.monotonic() - start
            frame += 1
            self.server.publish("pose_data", {
                "frame_id": frame, "processing_time_ms": 3.0,
                "persons": [person(7, 0.3 + 0.1 * (t % 3), 0.4),
                            person(8, 0.7, 0.6 - 0.05 * (t % 2), "standing")],
            }, "room_001")
            if frame % 10 == 1:
                self.server.publish("occupancy_update", {
                    "current_occupancy": 2, "previous_occupancy": 1,
                    "change_type": "person_entered", "confidence": 0.9,
                    "persons": [{"person_id": 7, "track_id": 7, "status": "active"},
                                {"person_id": 8, "track_id": 8, "status": "active"}],
                }, "room_001")
                self.server.publish("performance_update", {
                    "metrics": {"frames_per_second": 10.0, "average_latency_ms": 4.2,
                                "cpu_usage": 12.5, "memory_rss_mb": 40.0}, "alerts": []})
            if not fell and t >= self.fall_after:
                fell = True
                self.server.publish("activity_event", {
                    "event_type": "fall_detected", "severity": "high", "person_id": 8,
                    "track_id": 8, "confidence": 0.92, "location": {"x": 0.7, "y": 0.6},
                    "details": {"fall_duration": 1.1, "recovery_detected": False},
                }, "room_001")
                self.server.publish("hardware_event", {
                    "event": "packet_loss", "severity": "warning", "source_id": "esp32_a",
                    "message": "12 % loss over 5 s"}, "room_001")
            self.frames = frame
            time.sleep(0.1)

    def __enter__(self) -> Publisher:  # noqa: PYI034
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.join(5)


# A page that may be sent a message once: connected, and its subscriptions acknowledged
# by the server. A message published between the two is not for it yet (the server
# delivers to the subscriptions it holds), which made a one-message test flaky.
SUBSCRIBED = ("document.body.dataset.state === 'connected'"
              " && window.densepose.client.subscriptionIds.length > 0")


def state(browser: Browser) -> dict:
    """What the page shows, read from its DOM."""
    return browser.eval("""(() => {
      const b = document.body.dataset;
      const room = document.querySelector('.room[data-env="room_001"]');
      const occ = document.querySelector('.occ[data-env="room_001"]');
      const falls = [...document.querySelectorAll('#alerts li.fall')];
      return {
        state: b.state, frames: +b.frames, seq: +b.lastSequence, dropped: +b.dropped,
        reconnects: +b.reconnects, openFalls: b.openFalls, error: b.error || null,
        connText: document.getElementById('conn-text').textContent,
        room: room && {...room.dataset}, roomText: room && room.querySelector('h3').textContent,
        occupancy: occ && occ.dataset.occupancy, occupancyText: occ && occ.querySelector('.count').textContent,
        falls: falls.map((li) => ({...li.dataset, text: li.textContent,
                                   timeText: li.querySelector('.time').textContent})),
        banner: document.getElementById('fall-banner').hidden ? null : document.getElementById('fall-banner').textContent,
        events: document.getElementById('events').textContent,
        fps: document.getElementById('perf-fps').textContent,
        latency: document.getElementById('perf-latency').textContent,
        cpu: document.getElementById('perf-cpu').textContent,
        loginVisible: !document.getElementById('login').hidden,
        loginError: document.getElementById('login-error').textContent,
        href: location.href, html: document.documentElement.outerHTML,
      };
    })()""")


def shows_people(s: dict, n: int) -> bool:
    """The room's canvas shows ``n`` people (distinct tracks), each drawn as a skeleton."""
    r = s["room"] or {}
    return (r.get("persons") == r.get("drawn") == str(n)
            and len(set(r.get("tracks", "").split(","))) == n)


def wait_state(browser: Browser, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
    """Polls what the page shows until ``predicate`` holds; returns that very snapshot, so
    the assertions read the state the condition was met in."""
    deadline = time.monotonic() + timeout
    while True:
        s = state(browser)
        if predicate(s):
            return s
        if time.monotonic() > deadline:
            shown = {k: v for k, v in s.items() if k != "html"}
            raise TimeoutError(f"{what}: not shown within {timeout} s; the page shows {shown}; "
                               f"console: {browser.console[-10:]}")
        time.sleep(0.1)


def start_server(port: int, secret: str, timeout: float = 20.0) -> Server:
    """A server on ``port``, retrying while the previous one's socket is being released."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            server = Server(port=port, jwt_secret=secret, config=TEST_CONFIG).start()
        except RuntimeError as e:  # "cannot bind": the port is still taken
            if "bind" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        server.add_environment(ENV)
        return server


def test_dashboard_with_a_simulated_scenario(browser):
    """A simulated room in oracle mode: the simulator's ground truth, with realistic misses,
    ghosts and noise, is turned into detections that feed the engine's real tracking and
    analytics (pose_data says model_version "oracle:simulator-truth"). Oracle mode because
    the bundled pose model, trained on simulated CSI only, is too weak to find falls
    (README, docs/model.md); everything from the tracker to the page is the real thing.

    Every wait polls the page with a generous timeout; nothing asserts on timing."""
    scenario = scenario_two_people_one_falls()
    n_people = len(scenario["people"])
    fall_spot = scenario["people"][0]["actions"][0]["to"][-1]  # where the faller stands
    secret = "dashboard-test-secret"  # the same for both servers: the token stays valid
    first = start_server(0, secret)
    port = first.port
    token = first.issue_token("pytest", environments=[ENV])
    second = None
    try:
        browser.goto(f"{first.http_url}/?token={token}")
        browser.wait_for("document.body.dataset.state === 'connected'", timeout=30)
        # Start the scenario once the page has subscribed, so that it sees the first
        # occupancy changes too (occupancy_update is sent on changes only).
        browser.wait_for("window.densepose.client.subscriptionIds.length > 0", timeout=30)
        connected = state(browser)
        first.simulate(ENV, scenario, seed=SEED, oracle=True)

        # The people: a newcomer is counted after 4 detections (the tracker's settling
        # delay, docs/analytics.md); until then the page may show fewer.
        people = wait_state(browser, lambda s: shows_people(s, n_people) and s["occupancy"] == str(n_people),
                            30, f"{n_people} people")

        # The fall: the alert (person, place, time) and the banner, people still drawn
        # (and the server's first performance figures, for the screenshot).
        browser.wait_for("document.querySelector('#alerts li.fall')", timeout=60)
        fallen = wait_state(browser, lambda s: shows_people(s, n_people) and s["fps"] != "—",
                            30, "people and performance figures with the fall alert")
        SHOT_DIR.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SHOT_DIR / "dashboard.png")

        # It stays until acknowledged: through the person's recovery and more frames.
        recovered = wait_state(browser, lambda s: any(f.get("recovered") == "true" for f in s["falls"])
                               and s["frames"] >= fallen["frames"] + 30, 60, "the recovery")
        browser.eval("document.querySelector('#fall-banner button').click()")
        acked = state(browser)

        # The server stops; a new one starts on the same port with the same secret and
        # the scenario runs again there.
        frames_before = state(browser)["frames"]
        first.stop()
        reconnecting = wait_state(browser, lambda s: s["state"] == "reconnecting", 30, "reconnecting")
        second = start_server(port, secret)
        second.simulate(ENV, scenario, seed=SEED + 1, oracle=True)
        browser.wait_for("document.body.dataset.state === 'connected' && +document.body.dataset.reconnects >= 1",
                         timeout=60)
        after = wait_state(browser, lambda s: s["frames"] >= frames_before + 30 and shows_people(s, n_people),
                           60, "the new server's people")
        browser.screenshot(SHOT_DIR / "dashboard-reconnected.png")
    finally:
        first.stop()
        if second is not None:
            second.stop()

    assert connected["state"] == "connected" and connected["error"] is None
    # The token is kept out of the address bar and the DOM.
    assert token not in connected["href"] and token not in people["html"]

    # As many people as the scenario has, each drawn, labelled as oracle poses.
    assert people["room"]["persons"] == people["room"]["drawn"] == str(n_people)
    assert people["room"]["model"] == "oracle:simulator-truth"
    assert people["occupancy"] == people["occupancyText"] == str(n_people)
    assert f"{n_people} people" in people["roomText"] and "oracle:simulator-truth" in people["roomText"]
    # The simulated source itself shows up among the hardware events.
    assert "source_connected" in people["events"]

    # One fall alert: who, where, when; unacknowledged, and in the banner.
    assert len(fallen["falls"]) == 1, fallen["falls"]
    fall = fallen["falls"][0]
    assert fall["eventType"] == "fall_detected" and fall["acknowledged"] == "false"
    assert fall["env"] == ENV and f"in {ENV}" in fall["text"]
    assert fall["track"] in fallen["room"]["tracks"].split(",")
    assert f"track {fall['track']}" in fall["text"] and f"person {fall['person']}" in fall["text"]
    x, y = (float(v) for v in fall["location"].split(","))
    assert math.dist((x, y), fall_spot) < 1.5, (x, y)  # metres: where the scenario's person fell
    assert f"({x:.1f}, {y:.1f}) m" in fall["text"]
    assert fall["time"].endswith("Z") and fall["timeText"] and fall["timeText"] in fall["text"]
    assert fallen["openFalls"] == "1"
    assert fallen["fps"] != "—"
    banner = fallen["banner"]
    assert banner and "FALL DETECTED" in banner and f"track {fall['track']}" in banner
    assert ENV in banner and f"({x:.1f}, {y:.1f}) m" in banner and fall["timeText"] in banner

    # Still there after the person got up and more frames came: recovered, unacknowledged.
    [fall_later] = recovered["falls"]
    assert fall_later["recovered"] == "true" and fall_later["acknowledged"] == "false"
    assert recovered["openFalls"] == "1" and recovered["banner"] and "FALL DETECTED" in recovered["banner"]
    # Acknowledged: the banner goes, the alert stays in the list.
    assert acked["banner"] is None and acked["openFalls"] == "0"
    assert [f["acknowledged"] for f in acked["falls"]] == ["true"]

    # Reconnected to the new server and drawing its frames.
    assert reconnecting["connText"].startswith("reconnecting")
    assert "server_shutdown" in reconnecting["events"]  # the first server said goodbye
    assert after["state"] == "connected" and after["reconnects"] >= 1
    assert after["room"]["persons"] == after["room"]["drawn"] == str(n_people)
    assert after["frames"] > frames_before
    assert any(f["acknowledged"] == "true" for f in after["falls"])  # the page kept its alerts


def test_root_redirects_and_files_are_served(densepose_server):
    base = densepose_server.http_url

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(f"{base}/?token=abc")
    assert e.value.code == 302
    assert e.value.headers["Location"] == "/dashboard/?token=abc"
    for name, ctype in [("", "text/html"), ("index.html", "text/html"),
                        ("app.js", "text/javascript"), ("client.js", "text/javascript"),
                        ("style.css", "text/css")]:
        with urllib.request.urlopen(f"{base}/dashboard/{name}") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith(ctype), name
            assert len(r.read()) > 100
    for bad in ["/dashboard/missing.js", "/dashboard/../Cargo.toml", "/dashboard/%2e%2e/Cargo.toml",
                "/dashboard/..%2fsrc%2flib.rs", "/elsewhere"]:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}{bad}")
        assert e.value.code == 404, bad




def test_dashboard_renders_published_messages(densepose_server, densepose_token, browser):
    """Hand-made messages of every kind, published through the real server: exact figures
    (performance, hardware events) and a fall with its recovery are rendered as sent."""
    # The URL is read before the publisher thread starts: Server.port while another thread
    # is in Server.publish has been seen to deadlock (reported to the lead).
    url = f"{densepose_server.http_url}/?token={densepose_token}"
    with Publisher(densepose_server, fall_after=1.0) as pub:
        browser.goto(url)
        browser.wait_for("document.body.dataset.state === 'connected'")
        browser.wait_for("document.querySelector('#alerts li.fall') && +document.body.dataset.frames >= 5"
                         " && document.getElementById('perf-fps').textContent !== '—'")
        s = state(browser)
        # Acknowledging clears the banner and keeps the alert in the list.
        browser.eval("document.querySelector('#fall-banner button').click()")
        acked = state(browser)
        densepose_server.publish("activity_event", {
            "event_type": "fall_recovered", "severity": "info", "person_id": 8, "track_id": 8,
            "confidence": 0.9}, "room_001")
        browser.wait_for("document.querySelector('#alerts li.fall[data-recovered=\"true\"]')")
        recovered = state(browser)
    assert pub.frames > 5
    assert s["state"] == "connected"
    assert s["seq"] > 5 and s["frames"] >= 5
    # The room's canvas drew both skeletons with their track ids and all 17 keypoints each.
    assert s["room"] == {**s["room"], "persons": "2", "drawn": "2", "tracks": "7,8", "keypoints": "34"}
    # Occupancy shows the published value, large.
    assert s["occupancy"] == "2" and s["occupancyText"] == "2"
    # The fall: unacknowledged, with person and place, and the banner shows it.
    assert len(s["falls"]) == 1
    fall = s["falls"][0]
    assert fall["eventType"] == "fall_detected" and fall["acknowledged"] == "false"
    assert "track 8" in fall["text"] and "room_001" in fall["text"]
    assert s["openFalls"] == "1"
    assert s["banner"] and "FALL DETECTED" in s["banner"] and "track 8" in s["banner"]
    # Hardware events and performance figures are shown.
    assert "packet_loss" in s["events"] and "esp32_a" in s["events"]
    assert s["fps"] == "10.0" and s["latency"] == "4.2 ms" and s["cpu"] == "12.5 %"
    # The token is kept out of the address bar and the DOM.
    assert densepose_token not in s["href"] and densepose_token not in s["html"]
    assert acked["banner"] is None and acked["openFalls"] == "0"
    assert acked["falls"][0]["acknowledged"] == "true"
    assert "recovered" in recovered["falls"][0]["text"]
    assert "fall_recovered" in recovered["html"]


def test_bad_token_shows_a_clear_error(densepose_server, browser):
    browser.goto(f"{densepose_server.http_url}/dashboard/?token=not-a-jwt")
    browser.wait_for("document.body.dataset.state === 'refused'")
    s = state(browser)
    assert s["loginVisible"]
    assert "token is missing, invalid or expired" in s["loginError"]
    # It stops there: no reconnect loop against a server that refuses the token.
    time.sleep(1.5)
    assert state(browser)["state"] == "refused"


def test_token_entered_in_the_form(densepose_server, densepose_token, browser):
    browser.goto(f"{densepose_server.http_url}/dashboard/")
    browser.wait_for("document.body.dataset.state === 'no_token'")
    assert "Enter a token to connect." in state(browser)["loginError"]
    browser.eval(f"document.getElementById('token').value = {densepose_token!r};"
                 "document.getElementById('login').requestSubmit()")
    browser.wait_for(SUBSCRIBED)
    densepose_server.publish("occupancy_update", {"current_occupancy": 4}, "room_001")
    browser.wait_for("document.querySelector('.occ[data-env=\"room_001\"][data-occupancy=\"4\"]')")


def test_a_person_no_model_can_place_is_shown_present_not_drawn(densepose_server,
                                                                 densepose_token, browser):
    """One-antenna rooms and trained classifiers report someone without a position: the
    room says so (with the class and the motion level) and draws no invented body."""
    browser.goto(f"{densepose_server.http_url}/?token={densepose_token}")
    browser.wait_for(SUBSCRIBED)
    densepose_server.publish("pose_data", {
        "frame_id": 3, "environment_id": "room_001",
        "persons": [{"person_id": 0, "confidence": 0.9, "localized": False,
                     "activity": {"type": "brushteeth", "confidence": 0.7}}],
        "metadata": {"model_version": "mine-1234", "motion_level": 0.42,
                     "classification": {"type": "brushteeth", "confidence": 0.7}},
    }, "room_001")
    browser.wait_for("document.querySelector('.room[data-env=\"room_001\"][data-unlocalized=\"1\"]')")
    s = state(browser)
    assert s["room"]["persons"] == "1" and s["room"]["drawn"] == "0"
    assert s["room"]["activity"] == "brushteeth" and s["room"]["motion"] == "0.42"
    assert "not localized" in s["roomText"] and "brushteeth" in s["roomText"]
    assert "motion 0.42" in s["roomText"] and "mine-1234" in s["roomText"]


def test_a_person_placed_without_a_model_is_drawn_as_a_dot(densepose_server, densepose_token,
                                                           browser):
    """The localizer places someone with no pose model (a position in metres, no
    keypoints): the room draws them where they are, from the frame's room size."""
    browser.goto(f"{densepose_server.http_url}/?token={densepose_token}")
    browser.wait_for(SUBSCRIBED)
    densepose_server.publish("pose_data", {
        "frame_id": 4, "environment_id": "room_001",
        "persons": [{"person_id": 0, "confidence": 0.9, "localized": True,
                     "position": {"x": 4.5, "y": 1.0}}],
        "metadata": {"model_version": "sensing", "room_size": [6.0, 5.0], "motion_level": 0.8},
    }, "room_001")
    browser.wait_for("document.querySelector('.room[data-env=\"room_001\"][data-drawn=\"1\"]')")
    s = state(browser)
    assert s["room"]["persons"] == "1" and s["room"]["unlocalized"] == "0"
    # The dot is at (4.5/6, 1/5) of the floor: its pixel has the track's colour.
    pixel = browser.eval("""(() => {
        const c = document.querySelector('.room[data-env="room_001"] canvas');
        const pad = 16, u = 4.5 / 6, v = 1 / 5;
        const x = Math.round(pad + u * (c.width - 2 * pad)), y = Math.round(pad + v * (c.height - 2 * pad));
        return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
    })()""")
    assert pixel[3] == 255 and max(pixel[:3]) > 80, pixel
    # Without a room size there is nowhere to put it: counted, not drawn. (Another room:
    # a second frame of room_001 this soon would be held back by the pose throttle,
    # which runs per environment.)
    densepose_server.publish("pose_data", {
        "frame_id": 5, "environment_id": "room_002",
        "persons": [{"person_id": 0, "confidence": 0.9, "localized": True,
                     "position": {"x": 4.5, "y": 1.0}}],
        "metadata": {"model_version": "sensing"},
    }, "room_002")
    room2 = '.room[data-env="room_002"]'
    browser.wait_for(f"document.querySelector('{room2}[data-frame-id=\"5\"]')")
    assert browser.eval(f"document.querySelector('{room2}').dataset.persons") == "1"
    assert browser.eval(f"document.querySelector('{room2}').dataset.drawn") == "0"
