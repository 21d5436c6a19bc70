"""The Python face of the server: callbacks (sync, async, raising, slow), publish, config,
stop, and the package's own Client."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import wifi_densepose as wdp
from wifi_densepose import Client, PermissionDenied, Server, SubscriptionError
from wifi_densepose.testing import collect

from .conftest import connect, request, wait_for


def test_sync_callbacks_receive_the_wire_data(densepose_server):
    falls = collect(densepose_server, "activity_event")
    data = {"event_type": "fall_detected", "severity": "high", "person_id": 3,
            "location": {"x": 210, "y": 180}}
    densepose_server.publish("activity_event", data, environment_id="room_001")
    (got,) = falls.wait(1)
    assert got == {**data, "environment_id": "room_001"}


def test_decorator_form_and_off(densepose_server):
    seen = []

    @densepose_server.on("system_event")
    def handler(data):
        seen.append(data["event"])

    densepose_server.publish("system_event", {"event": "one"})
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    densepose_server.off("system_event", handler)
    densepose_server.publish("system_event", {"event": "two"})
    time.sleep(0.2)
    assert seen == ["one"]


def test_raising_callback_is_logged_and_server_goes_on(densepose_server, caplog):
    def boom(data):
        raise RuntimeError("callback bug")

    densepose_server.on("system_event", boom)
    after = collect(densepose_server, "system_event")
    for i in range(3):
        densepose_server.publish("system_event", {"event": f"e{i}"})
    after.wait(3)
    deadline = time.monotonic() + 2
    while densepose_server.callback_errors < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert densepose_server.callback_errors == 3
    assert "callback bug" in caplog.text
    assert densepose_server.running


async def test_async_callbacks_run_on_the_callers_loop(densepose_server):
    loop = asyncio.get_running_loop()
    got: asyncio.Queue = asyncio.Queue()

    async def on_occupancy(data):
        assert asyncio.get_running_loop() is loop
        await got.put(data["current_occupancy"])

    densepose_server.on("occupancy_update", on_occupancy)
    for n in (1, 2, 3):
        densepose_server.publish("occupancy_update", {"current_occupancy": n}, "room_001")
    assert [await asyncio.wait_for(got.get(), 5) for _ in range(3)] == [1, 2, 3]


async def test_async_callback_errors_are_counted(densepose_server):
    async def bad(data):
        raise ValueError("async bug")

    densepose_server.on("config_update", bad)
    densepose_server.publish("config_update", {"changed_fields": ["x"]})
    deadline = time.monotonic() + 5
    while densepose_server.callback_errors < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert densepose_server.callback_errors == 1


def test_async_callback_outside_a_loop_is_a_clear_error(densepose_server):
    async def cb(data):
        pass

    with pytest.raises(RuntimeError, match="event loop"):
        densepose_server.on("pose_data", cb)


async def test_slow_callback_does_not_stall_clients():
    with Server(config={"callback_queue_capacity": 4}) as s:
        release = threading.Event()
        s.on("pose_data", lambda d: release.wait(10))
        async with connect(s, s.issue_token("me")) as ws:
            await wait_for(ws)
            await request(ws, "subscribe", {"subscriptions": [{"event_type": "pose_data", "quality": "high"}]})
            for i in range(40):
                s.publish("pose_data", {"frame_id": i, "persons": []}, "room_001")
                await asyncio.sleep(0.035)
            frames = 0
            while frames < 30:
                await wait_for(ws, lambda m: m["type"] == "pose_data")
                frames += 1
        import re

        dropped = int(re.search(r"^wdp_callback_dropped_total (\d+)$", s.metrics(), re.MULTILINE).group(1))
        assert dropped >= 30, "the stuck callback's queue overflowed and was counted"
        release.set()


def test_stop_never_hangs_on_a_stuck_callback():
    s = Server().start()
    stuck = threading.Event()
    s.on("system_event", lambda d: stuck.wait(30))
    s.publish("system_event", {"event": "x"})
    time.sleep(0.1)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 3
    stuck.set()


def test_publish_errors(densepose_server):
    with pytest.raises(ValueError, match="unknown event type 'pose'"):
        densepose_server.publish("pose", {})
    with pytest.raises(TypeError, match="must be a dict"):
        densepose_server.publish("pose_data", [1, 2])
    with pytest.raises(TypeError):
        densepose_server.publish("pose_data", {"x": object()})


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="heartbeat_timout_s"):
        Server(config={"heartbeat_timout_s": 3})
    with pytest.raises(ValueError, match="heartbeat_timeout_s"):
        Server(config={"heartbeat_timeout_s": -1})
    with pytest.raises(ValueError, match="rate_limits.subscribe"):
        Server(config={"rate_limits": {"subscribe": [0, 60]}})


def test_toml_config(tmp_path):
    cfg = tmp_path / "wdp.toml"
    cfg.write_text("[server]\nheartbeat_interval_s = 0.5\nmax_subscriptions = 2\n")
    with Server(config=str(cfg)) as s:
        assert s.running


def test_lifecycle_errors():
    s = Server()
    with pytest.raises(RuntimeError, match="not running"):
        _ = s.url
    with pytest.raises(RuntimeError, match="not running"):
        s.publish("system_event", {})
    s.start()
    with pytest.raises(RuntimeError, match="already running"):
        s.start()
    s.stop()
    s.stop()
    assert not s.running


def test_port_in_use_is_a_clear_error():
    with Server() as a, pytest.raises(RuntimeError, match="cannot bind"):
        Server(port=a.port).start()


async def test_client_subscribe_receive_and_errors(densepose_server):
    token = densepose_server.issue_token("client", environments=["room_001"])
    densepose_server.add_environment("room_002")
    async with Client(densepose_server.url, token, client_id="nb") as client:
        sid = await client.subscribe("pose_data", environment_id="room_001", max_fps=10)
        assert sid.startswith("sub_")
        densepose_server.publish("pose_data", {"frame_id": 1, "persons": []}, "room_001")
        msg = await client.recv(timeout=5)
        assert msg["type"] == "pose_data" and msg["data"]["frame_id"] == 1
        with pytest.raises(SubscriptionError) as e:
            await client.subscribe("pose_data", min_confidence=3)
        assert e.value.details["field"] == "subscriptions[0].filters.min_confidence"
        with pytest.raises(PermissionDenied):
            await client.subscribe("pose_data", environment_id="room_002")
        status = await client.status()
        assert status["active_subscriptions"] == 1
        with pytest.raises(TypeError, match="unknown subscription option"):
            await client.subscribe("pose_data", colour="red")


async def test_client_reconnects_and_resumes_after_a_drop():
    with Server(config={"heartbeat_timeout_s": 0.4}) as s:
        s.add_environment("room_001")
        # heartbeat_interval_s=None: the client stays silent, so the server drops it.
        client = Client(s.url, s.issue_token("me"), heartbeat_interval_s=None, backoff_s=0.05)
        await client.connect()
        import websockets

        # Keep pings off too, so the connection really goes silent.
        client._ws.ping_interval = None
        await client.subscribe("activity_event")
        first_session = client.session_id
        s.publish("activity_event", {"event_type": "fall_detected", "n": 1}, "room_001")
        assert (await client.recv(timeout=5))["data"]["n"] == 1
        # Silence past the heartbeat timeout: the server disconnects (resumable).
        got_disconnect = await client.recv(timeout=5)
        assert got_disconnect["type"] in ("error", "disconnect")
        s.publish("activity_event", {"event_type": "fall_detected", "n": 2}, "room_001")
        deadline = time.monotonic() + 5
        while client.reconnects == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert client.reconnects >= 1
        assert client.session_id == first_session
        msg = await client.recv(timeout=5)
        while msg["type"] != "activity_event":
            msg = await client.recv(timeout=5)
        assert msg["data"]["n"] == 2, "the alert published while away was replayed"
        assert isinstance(websockets.__version__, str)
        await client.close()


def test_public_surface():
    assert wdp.__version__
    assert "pose_data" in wdp.EVENT_TYPES and len(wdp.EVENT_TYPES) == 10


async def test_client_survives_a_server_restart_by_subscribing_again():
    first = Server(jwt_secret="restart-secret-0123456789abcdef").start()
    port = first.port
    first.add_environment("room_001")
    token = first.issue_token("me")
    client = Client(first.url, token, backoff_s=0.05, max_retries=20)
    await client.connect()
    await client.subscribe("activity_event", environment_id="room_001")
    await asyncio.get_running_loop().run_in_executor(None, first.stop)
    bye = await client.recv(timeout=5)
    assert bye["type"] == "disconnect" and bye["data"]["reason"] == "server_shutdown"
    second = Server(port=port, jwt_secret="restart-secret-0123456789abcdef").start()
    try:
        second.add_environment("room_001")
        deadline = time.monotonic() + 10
        while client.reconnects == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.reconnects == 1, "reconnected after the restart"
        # The new server never knew the session: the client subscribed again by itself.
        status = await client.status()
        assert status["active_subscriptions"] == 1
        second.publish("activity_event", {"event_type": "fall_detected", "n": 9}, "room_001")
        msg = await client.recv(timeout=5)
        assert msg["data"]["n"] == 9
    finally:
        await client.close()
        second.stop()


async def test_client_does_not_reconnect_after_token_expiry():
    with Server() as s:
        client = Client(s.url, s.issue_token("me", ttl_s=1), backoff_s=0.05)
        await client.connect()
        seen = []
        with pytest.raises(wdp.ConnectionLost):
            while True:
                seen.append((await client.recv(timeout=5))["type"])
        assert "token_expired" in seen and client.close_code == 4001 and client.reconnects == 0


def test_sync_client_for_scripts(densepose_server):
    token = densepose_server.issue_token("script")
    with wdp.SyncClient(densepose_server.url, token) as client:
        sid = client.subscribe("occupancy_update", environment_id="room_001")
        densepose_server.publish("occupancy_update", {"current_occupancy": 2}, "room_001")
        msg = client.recv(timeout=5)
        assert msg["data"]["current_occupancy"] == 2
        assert msg["metadata"]["subscription_id"] == sid
        assert client.status()["active_subscriptions"] == 1
        with pytest.raises(SubscriptionError):
            client.subscribe("occupancy_update", min_confidence=7)
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.2)


def test_no_deadlock_between_publishing_and_reading_properties():
    # A thread inside publish releases the GIL while the engine works; another thread
    # reading properties must not wait on a lock that thread holds (it once did).
    with Server() as s:
        s.add_environment("room_001")
        stop = threading.Event()

        def publish_forever():
            while not stop.is_set():
                s.publish("pose_data", {"persons": []}, "room_001")

        t = threading.Thread(target=publish_forever, daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        for _ in range(2000):
            assert s.port > 0 and s.url.startswith("ws://") and s.issue_token("x")
            assert time.monotonic() < deadline, "property reads stalled"
        stop.set()
        t.join(5)
        assert not t.is_alive()
