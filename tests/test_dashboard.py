"""The dashboard (dashboard/, embedded in the server) in headless Chromium against a real
server: it connects, draws the people the server sends, raises the fall alert, shows
occupancy, reports a bad token, and reconnects after the server restarts."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from wifi_densepose import Server
from wifi_densepose.testing import TEST_CONFIG

from tests.cdp import Browser

SHOT_DIR = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR", "/tmp"))


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
        room: room && {...room.dataset},
        occupancy: occ && occ.dataset.occupancy, occupancyText: occ && occ.querySelector('.count').textContent,
        falls: falls.map((li) => ({...li.dataset, text: li.textContent})),
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


def test_dashboard_draws_people_occupancy_and_fall(densepose_server, densepose_token, browser):
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
        SHOT_DIR.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SHOT_DIR / "dashboard-acknowledged.png")
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


def test_dashboard_screenshot(densepose_server, densepose_token, browser):
    shot = SHOT_DIR / "dashboard.png"
    shot.unlink(missing_ok=True)
    url = f"{densepose_server.http_url}/?token={densepose_token}"
    with Publisher(densepose_server, fall_after=0.5):
        browser.goto(url)
        browser.wait_for("document.querySelector('#alerts li.fall') && +document.body.dataset.frames >= 10"
                         " && document.getElementById('perf-fps').textContent !== '—'")
        browser.screenshot(shot)
    assert shot.stat().st_size > 10_000


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
    browser.wait_for("document.body.dataset.state === 'connected'")
    densepose_server.publish("occupancy_update", {"current_occupancy": 4}, "room_001")
    browser.wait_for("document.querySelector('.occ[data-env=\"room_001\"][data-occupancy=\"4\"]')")


def test_dashboard_reconnects_after_server_restart(browser):
    """The server stops and a new one starts on the same port with the same secret: the
    page reconnects with backoff, subscribes afresh and draws the new server's frames."""
    secret = "dashboard-test-secret"
    first = Server(jwt_secret=secret, config=TEST_CONFIG).start()
    port = first.port
    first.add_environment("room_001")
    token = first.issue_token("pytest")
    second = None
    try:
        browser.goto(f"{first.http_url}/dashboard/?token={token}")
        browser.wait_for("document.body.dataset.state === 'connected'")
        for _ in range(3):
            first.publish("pose_data", {"frame_id": 1, "persons": [person(1, 0.5, 0.5)]}, "room_001")
            time.sleep(0.15)
        browser.wait_for("document.querySelector('.room[data-tracks=\"1\"]')")
        first.stop()
        browser.wait_for("document.body.dataset.state === 'reconnecting'")
        time.sleep(1.0)
        second = Server(port=port, jwt_secret=secret, config=TEST_CONFIG).start()
        second.add_environment("room_001")
        browser.wait_for("document.body.dataset.state === 'connected' && +document.body.dataset.reconnects >= 1",
                         timeout=20)
        # Publish until the page shows the new server's people (its subscription is fresh).
        deadline = time.monotonic() + 10
        while not browser.eval("!!document.querySelector('.room[data-tracks=\"5,6\"]')"):
            assert time.monotonic() < deadline, state(browser)["html"][:3000]
            second.publish("pose_data", {"frame_id": 2, "persons": [person(5, 0.4, 0.5), person(6, 0.6, 0.5)]},
                           "room_001")
            time.sleep(0.1)
        s = state(browser)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert s["reconnects"] >= 1
    assert "server_shutdown" in s["events"]  # the first server said goodbye before closing

