"""Limits and faults: rate limits, floods, oversized frames, silence, token expiry, slow
consumers and resume, shutdown. In every case the other clients keep being served."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time

import pytest
import websockets
from wifi_densepose import Server

from .conftest import connect, http_get, request, send, wait_for


async def still_served(server, token, marker):
    """A second client receives an event published now: the server is still serving."""
    async with connect(server, token) as other:
        await wait_for(other)
        ack = await request(other, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        assert ack["type"] == "ack"
        server.publish("activity_event", {"event_type": "check", "marker": marker}, "room_001")
        msg = await wait_for(other, lambda m: m["type"] == "activity_event")
        assert msg["data"]["marker"] == marker


async def test_subscribe_rate_limit(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        for i in range(10):
            reply = await request(ws, "subscribe", {"subscriptions": [{"event_type": "system_event"}]}
                                  if i % 2 == 0 else {"subscriptions": [{"event_type": "bad"}]})
            assert reply["data"].get("error_code") != "RATE_LIMIT_EXCEEDED"
        err = await request(ws, "unsubscribe", {"subscription_ids": ["sub_1"]})
        assert err["data"]["error_code"] == "RATE_LIMIT_EXCEEDED"
        d = err["data"]["details"]
        assert d["limit"] == 10 and d["window"] == "1_minute"
        assert d["current_rate"] == 11 and 50 <= d["retry_after"] <= 60
        # The connection keeps working for other message kinds.
        assert (await request(ws, "connection_status"))["data"]["active_subscriptions"] == 5


async def test_general_rate_limit_and_error_suppression(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        for _ in range(60):
            await send(ws, "connection_status")
        for _ in range(60):
            await wait_for(ws, lambda m: m["type"] == "connection_status")
        for _ in range(5):
            await send(ws, "connection_status")
        err = await wait_for(ws, lambda m: m["type"] == "error")
        assert err["data"]["error_code"] == "RATE_LIMIT_EXCEEDED"
        assert err["data"]["details"]["limit"] == 60
        # The next four refusals in the same second are counted, not answered.
        await asyncio.sleep(1.1)
        await send(ws, "connection_status")
        err = await wait_for(ws, lambda m: m["type"] == "error")
        assert err["data"]["details"]["suppressed_errors"] == 4
        hb = await request(ws, "heartbeat")
        assert hb["type"] == "heartbeat", "heartbeats have their own budget"


async def test_heartbeat_rate_limit(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        assert (await request(ws, "heartbeat"))["type"] == "heartbeat"
        err = await request(ws, "heartbeat")
        assert err["type"] == "error"
        assert err["data"]["details"]["window"] == "30_seconds"
        assert err["data"]["details"]["limit"] == 1


async def test_flood_closes_only_the_flooder(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(1000):
                await ws.send('{"type":"heartbeat"}')
            for _ in range(2000):
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008
    await still_served(densepose_server, densepose_token, "after-flood")


async def test_oversized_frame_closes_with_1009(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await ws.send(json.dumps({"type": "heartbeat", "data": {"pad": "x" * 100_000}}))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
    await still_served(densepose_server, densepose_token, "after-oversize")


async def test_garbage_bytes_on_the_socket(densepose_server, densepose_token):
    reader, writer = await asyncio.open_connection("127.0.0.1", densepose_server.port)
    writer.write(os.urandom(4096))
    await writer.drain()
    await asyncio.wait_for(reader.read(), 5)  # the server answers or hangs up; either way
    writer.close()
    await still_served(densepose_server, densepose_token, "after-garbage")


async def test_silent_connection_is_closed_after_heartbeat_timeout():
    with Server(config={"heartbeat_timeout_s": 0.5}) as s:
        async with websockets.connect(f"{s.url}?token={s.issue_token('me')}", ping_interval=None) as ws:
            msgs = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            kinds = [m["type"] for m in msgs]
            assert kinds == ["connection_status", "error", "disconnect"]
            assert msgs[1]["data"]["error_code"] == "CONNECTION_ERROR"
            assert msgs[2]["data"]["reason"] == "heartbeat_timeout"
            assert msgs[2]["data"]["resumable"] is True
            assert ws.close_code == 4002


async def test_pings_keep_a_connection_alive():
    with Server(config={"heartbeat_timeout_s": 0.6}) as s:
        async with websockets.connect(f"{s.url}?token={s.issue_token('me')}", ping_interval=0.2) as ws:
            await asyncio.sleep(1.5)
            assert (await request(ws, "connection_status"))["data"]["status"] == "connected"


async def test_token_expiry_while_connected():
    with Server() as s:
        async with connect(s, s.issue_token("me", ttl_s=1)) as ws:
            msgs = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            kinds = [m["type"] for m in msgs]
            assert kinds[-2:] == ["token_expired", "disconnect"]
            assert "expired" in msgs[-2]["data"]["message"]
            assert ws.close_code == 4001


async def test_pose_frames_drop_under_buffer_size_and_are_counted(densepose_server, densepose_token):
    url = f"{densepose_server.url}?token={densepose_token}"
    async with websockets.connect(url, compression=None, max_queue=2, max_size=None) as ws:
        await wait_for(ws)
        await request(ws, "subscribe", {"subscriptions": [
            {"event_type": "pose_data", "throttle": {"max_fps": 30, "buffer_size": 2}}]})
        # Big frames fill the socket within a few frames; the client reads nothing for 4 s.
        big = os.urandom(250_000).hex()
        published = 120
        for i in range(published):
            densepose_server.publish("pose_data", {"frame_id": i, "pad": big, "persons": []}, "room_001")
            await asyncio.sleep(1 / 30)
        frames = []
        try:
            while True:
                m = await wait_for(ws, lambda m: m["type"] == "pose_data", timeout=1.5)
                frames.append(m["data"]["frame_id"])
        except TimeoutError:
            pass
        status = await request(ws, "connection_status")
        dropped = status["data"]["dropped"]["pose_frames"]
        throttled = status["data"]["throttled"]
        assert dropped > 0, "the stalled client lost frames"
        assert len(frames) + dropped + throttled == published, "every frame is delivered or counted"
        assert frames == sorted(frames) and frames[-1] == published - 1, "the newest frame survives"
        # /metrics counts the same drops and throttled frames (this is the only client).
        text = densepose_server.metrics()
        assert f"wdp_frames_dropped_total {dropped}\n" in text
        assert f"wdp_throttled_total {throttled}\n" in text


async def test_slow_consumer_is_disconnected_then_resumes_every_alert():
    config = {"alert_queue_capacity": 8, "write_timeout_s": 0.5}
    with Server(config=config) as s:
        token = s.issue_token("slow")
        s.add_environment("room_001")
        ws = await websockets.connect(f"{s.url}?token={token}", compression=None, max_queue=1, max_size=None)
        hello = json.loads(await ws.recv())
        session_id = hello["data"]["session_id"]
        await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        pad = os.urandom(30_000).hex()
        total = 300
        for n in range(total):
            s.publish("activity_event", {"event_type": "fall_detected", "n": n, "pad": pad}, "room_001")
        deadline = time.monotonic() + 10
        while "wdp_slow_consumer_disconnects_total 1" not in http_get(s.http_url + "/metrics")[2]:
            assert time.monotonic() < deadline, "server never gave up on the slow client"
            await asyncio.sleep(0.05)
        seen, last_seq, close = set(), 0, None
        try:
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m["type"] == "activity_event":
                    seen.add(m["data"]["n"])
                    last_seq = m["metadata"]["sequence"]
                if m["type"] == "disconnect":
                    close = m
        except websockets.ConnectionClosed:
            pass
        assert ws.close_code in (1013, 1006), ws.close_code
        if close is not None:
            assert close["data"]["reason"] == "slow_consumer" and close["data"]["resumable"]
        assert len(seen) < total, "the client really fell behind"
        # Alerts published while disconnected are kept too.
        s.publish("activity_event", {"event_type": "fall_detected", "n": total}, "room_001")
        async with connect(s, token) as again:
            await wait_for(again)
            ack = await request(again, "resume", {"session_id": session_id, "last_sequence": last_seq})
            assert ack["type"] == "ack", ack
            assert ack["data"]["session_id"] == session_id
            assert ack["data"]["alerts_lost"] is False
            replayed = ack["data"]["replayed"]
            got = []
            for _ in range(replayed):
                m = await wait_for(again, lambda m: m["type"] == "activity_event")
                got.append(m)
            assert seen | {m["data"]["n"] for m in got} == set(range(total + 1))
            seqs = [m["metadata"]["sequence"] for m in got]
            assert seqs == sorted(seqs) and seqs[0] > ack["metadata"]["sequence"]
            assert all(m["metadata"]["replayed_from"] > last_seq for m in got)
            # The subscription came back with the session.
            s.publish("activity_event", {"event_type": "fall_detected", "n": "live"}, "room_001")
            live = await wait_for(again, lambda m: m["type"] == "activity_event")
            assert live["data"]["n"] == "live"


async def test_resume_failures_are_errors(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        err = await request(ws, "resume", {"session_id": "session_nope", "last_sequence": 1})
        assert err["data"]["error_code"] == "RESUME_FAILED"
        err = await request(ws, "resume", {"session_id": "x"})
        assert "last_sequence" in err["data"]["details"]["reason"]
    other = densepose_server.issue_token("someone-else")
    async with connect(densepose_server, densepose_token) as a:
        sid = (await wait_for(a))["data"]["session_id"]
        async with connect(densepose_server, other) as b:
            await wait_for(b)
            err = await request(b, "resume", {"session_id": sid, "last_sequence": 0})
            assert "another" in err["data"]["details"]["reason"]


async def test_resume_takes_over_a_live_session(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as a:
        sid = (await wait_for(a))["data"]["session_id"]
        await request(a, "subscribe", {"subscriptions": [{"event_type": "occupancy_update"}]})
        async with connect(densepose_server, densepose_token) as b:
            await wait_for(b)
            ack = await request(b, "resume", {"session_id": sid, "last_sequence": 2})
            assert ack["data"]["session_id"] == sid
            bye = await wait_for(a, lambda m: m["type"] == "disconnect")
            assert bye["data"]["reason"] == "resumed_elsewhere"
            densepose_server.publish("occupancy_update", {"current_occupancy": 1}, "room_001")
            m = await wait_for(b, lambda m: m["type"] == "occupancy_update")
            assert m["data"]["current_occupancy"] == 1


async def test_stop_with_clients_connected_is_prompt_and_says_goodbye():
    s = Server().start()
    token = s.issue_token("me")
    socks = [await websockets.connect(f"{s.url}?token={token}") for _ in range(20)]
    for ws in socks:
        await ws.recv()
    t0 = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, s.stop)
    assert time.monotonic() - t0 < 3.5
    for ws in socks:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert msg["type"] == "disconnect" and msg["data"]["reason"] == "server_shutdown"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
        assert ws.close_code == 1001
    s.stop()  # idempotent


def test_metrics_count_what_happened(densepose_server):
    text = densepose_server.metrics()
    assert re.search(r"^wdp_events_published_total 0$", text, re.MULTILINE)
    densepose_server.publish("system_event", {"event": "x"})
    assert re.search(r"^wdp_events_published_total 1$", densepose_server.metrics(), re.MULTILINE)


async def test_connections_past_the_maximum_get_503():
    with Server(config={"max_connections": 2}) as s:
        token = s.issue_token("me")
        async with connect(s, token) as a, connect(s, token) as b:
            await wait_for(a)
            await wait_for(b)
            with pytest.raises(websockets.InvalidStatus) as e:
                async with connect(s, token):
                    pass
            assert e.value.response.status_code == 503
            assert json.loads(e.value.response.body)["error"] == "server_full"
        # Once they are gone, there is room again.
        deadline = time.monotonic() + 5
        while True:
            try:
                async with connect(s, token) as c:
                    assert (await wait_for(c))["type"] == "connection_status"
                break
            except websockets.InvalidStatus:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)


async def test_idle_sockets_without_a_request_are_dropped():
    with Server(config={"header_timeout_s": 0.3}) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET /ws/v1 HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        await writer.drain()
        t0 = time.monotonic()
        await asyncio.wait_for(reader.read(), 5)  # returns when the server hangs up
        assert time.monotonic() - t0 < 3
        writer.close()
