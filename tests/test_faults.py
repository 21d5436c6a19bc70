"""Faults a deployment meets: garbage on the UDP port, clients that vanish mid-frame,
reconnect storms, clients that never read, a source that stops and returns, floods of
malformed messages, callbacks that raise or block, a server restart, and clients that
fall behind or drop and resume. The server keeps serving everyone else, nothing leaks,
and no alert is lost without the client being told (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import socket
import threading
import time

import numpy as np
import websockets
from wifi_densepose import Server, sim
from wifi_densepose.udp import encode_frame

from .conftest import connect, decode, read_all, request, send, wait_for


def metric(server: Server, name: str) -> int:
    return int(re.search(rf"^{name} (\d+)$", server.metrics(), re.MULTILINE).group(1))


def wait_until_drained(listener, sent: int, timeout: float = 5.0) -> None:
    """Until the listener has read ``sent`` datagrams, or its count stops moving."""
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        seen = listener.stats()["datagrams"]
        if seen >= sent:
            return
        if seen != last:
            last, still_since = seen, time.monotonic()
        elif time.monotonic() - still_since > 0.5:
            return  # some were dropped after all; the assertions below say how many
        time.sleep(0.005)


def test_udp_garbage_flood_does_not_stop_the_listener():
    with Server(config={"stall_timeout_s": 5}) as s:
        s.add_environment("room_001")
        listener = s.listen_udp({1: "room_001"})
        good = encode_frame(1, np.ones((1, 1, 64), np.complex64), sequence=0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(3000):
                junk = os.urandom(i % 300 + 1)
                if i % 3 == 0:
                    junk = good[:32] + junk  # a valid header with a wrong body length
                sock.sendto(junk, ("127.0.0.1", listener.port))
                if i % 50 == 49:
                    # Batches of 50 (15 kB at most, far below the socket's buffer), each
                    # drained before the next: on a busy machine a flood at full speed
                    # overflows the buffer and the kernel drops most of it, which tests
                    # the kernel, not the listener.
                    wait_until_drained(listener, i + 1)
            # The kernel drops datagrams when the socket buffer overflows, so send the good
            # frame until it gets through: the listener must still be decoding.
            for _ in range(100):
                sock.sendto(good, ("127.0.0.1", listener.port))
                time.sleep(0.05)
                if listener.stats()["frames"]:
                    break
        stats = listener.stats()
        # Loopback may drop some datagrams under a flood; every one that arrived is counted
        # (junk that happens to be text without a CSI_DATA line counts as skipped).
        assert stats["bad"] + stats["frames"] + stats["skipped"] == stats["datagrams"]
        assert stats["bad"] > 500 and stats["frames"] >= 1


async def test_client_vanishing_mid_frame_does_not_disturb_others(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", densepose_server.port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write((f"GET /ws/v1?token={densepose_token} HTTP/1.1\r\nHost: x\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            await writer.drain()
            assert b"101" in await reader.readuntil(b"\r\n\r\n")
            # A masked text frame header announcing 1000 bytes, then 10 of them, then gone.
            writer.write(bytes([0x81, 0xFE, 0x03, 0xE8]) + os.urandom(4) + b"{\"type\":\"h")
            await writer.drain()
            writer.transport.abort()
        densepose_server.publish("activity_event", {"event_type": "fall_detected", "n": 1}, "room_001")
        assert (await wait_for(ws, lambda m: m["type"] == "activity_event"))["data"]["n"] == 1


async def test_reconnect_storm_leaves_no_sessions_behind(densepose_server, densepose_token):
    for _ in range(3):
        socks = await asyncio.gather(*[
            websockets.connect(f"{densepose_server.url}?token={densepose_token}", compression=None)
            for _ in range(60)])
        await asyncio.gather(*[ws.recv() for ws in socks])
        await asyncio.gather(*[ws.close() for ws in socks])
    deadline = time.monotonic() + 5
    while metric(densepose_server, "wdp_connections_active") or metric(densepose_server, "wdp_sessions"):
        assert time.monotonic() < deadline, "connections or sessions leaked"
        await asyncio.sleep(0.05)
    assert metric(densepose_server, "wdp_connections_total") == 180
    async with connect(densepose_server, densepose_token) as ws:
        assert (await wait_for(ws))["type"] == "connection_status"


async def test_a_client_that_never_reads_does_not_slow_the_others(densepose_server, densepose_token):
    url = f"{densepose_server.url}?token={densepose_token}"
    stuck = await websockets.connect(url, compression=None, max_queue=1)
    await stuck.send('{"type":"subscribe","data":{"subscriptions":[{"event_type":"pose_data","quality":"high"}]}}')
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await request(ws, "subscribe", {"subscriptions": [{"event_type": "pose_data", "quality": "high"}]})
        pad = os.urandom(100_000).hex()
        got = 0
        for i in range(60):
            densepose_server.publish("pose_data", {"frame_id": i, "pad": pad, "persons": []}, "room_001")
            await asyncio.sleep(1 / 30)
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.001)
                    got += 1
                except TimeoutError:
                    break
        # The reader got (nearly) every frame while the other socket sat full.
        assert got >= 55, got
    stuck.transport.abort()  # it never reads, so a close handshake could not finish


# -- a source that stops and returns ------------------------------------------------------
def send_paced(port: int, node: int, csi: np.ndarray, first_seq: int) -> None:
    """Sends frames as an ESP32 node would: 100 a second, stamped with the time sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        for i, frame in enumerate(csi):
            delay = start + i / 100 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(encode_frame(node, frame, sequence=first_seq + i), ("127.0.0.1", port))


async def read_into(ws, sink: list, until, timeout: float = 10.0) -> None:
    """Appends every message to ``sink`` until ``until(sink)`` holds."""
    deadline = time.monotonic() + timeout
    while not until(sink):
        left = deadline - time.monotonic()
        assert left > 0, f"condition not met; last messages: {[m['type'] for m in sink[-5:]]}"
        sink.append(decode(await asyncio.wait_for(ws.recv(), left)))


async def test_a_source_that_stops_and_returns_resumes_the_pose_stream():
    # A 3x3x30 UDP node feeding the bundled model: poses flow, the node goes silent (a
    # reboot, a cable), the server says so, and when it returns so do the poses.
    csi = sim.generate("walk", seed=3, duration_s=2.5)["csi"]
    with Server(config={"stall_timeout_s": 0.5}) as s:
        s.add_environment("room_001")
        listener = s.listen_udp({5: "room_001"})
        loop = asyncio.get_running_loop()
        async with connect(s, s.issue_token("t")) as ws:
            await wait_for(ws)
            await request(ws, "subscribe", {"subscriptions": [
                {"event_type": "pose_data", "quality": "high"}, {"event_type": "hardware_event"}]})
            got: list = []

            def event(name):
                return lambda ms: any(m["type"] == "hardware_event" and m["data"]["event"] == name
                                      for m in ms)

            await asyncio.gather(loop.run_in_executor(None, send_paced, listener.port, 5, csi[:100], 0),
                                 read_into(ws, got, event("source_connected")))
            await read_into(ws, got, event("source_stopped"))
            stopped_at = len(got)
            before = [m for m in got if m["type"] == "pose_data"]
            assert before, "no poses before the source stopped"
            # The node comes back (its sequence numbers carry on) after the silence.
            back = time.time()
            await asyncio.gather(loop.run_in_executor(None, send_paced, listener.port, 5, csi[100:], 100),
                                 read_into(ws, got, event("source_reconnected")))
            await read_into(ws, got, lambda ms: sum(
                m["type"] == "pose_data" and m["data"]["metadata"]["source_time"] >= back
                for m in ms) >= 20)
        stats = s.environment_stats("room_001")
    node = stats["sources"]["udp:node_5"]
    assert node["stalls"] == 1 and node["gaps"] == 0
    assert stats["model"]["failures"] == 0
    # Nothing was made up while the node was silent: every pose after the stop notice
    # comes from packets sent before it or after the return.
    silent = [m for m in got[stopped_at:] if m["type"] == "pose_data"
              and before[-1]["data"]["metadata"]["source_time"]
              < m["data"]["metadata"]["source_time"] < back]
    assert silent == []
    frame_ids = [m["data"]["frame_id"] for m in got if m["type"] == "pose_data"]
    assert frame_ids == sorted(frame_ids) and len(set(frame_ids)) == len(frame_ids)


# -- a flood of malformed WebSocket messages ----------------------------------------------
MALFORMED = ["not json", "[1, 2, 3]", '{"type": 5}', '{"type": "subscribe", "data": "x"}',
             '{"type": "pose_data", "data": {}}', '{"no_type": true}', "{", "",
             b"\xff\xfe\x00binary"]


async def test_a_flood_of_malformed_messages_closes_the_flooders_and_nobody_else(
        densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as good:
        await wait_for(good)
        await request(good, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})

        async def flood(garbage: list) -> tuple:
            async with connect(densepose_server, densepose_token) as ws:
                await wait_for(ws)
                replies = []
                try:
                    for i in range(1000):
                        await ws.send(garbage[i % len(garbage)])
                    while True:
                        replies.append(decode(await asyncio.wait_for(ws.recv(), 5)))
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code, replies

        # Two send every kind of garbage, one only binary frames.
        flooders = asyncio.gather(flood(MALFORMED), flood(MALFORMED), flood([b"\x00" * 64]))
        published = 50
        for n in range(published):
            densepose_server.publish("activity_event", {"event_type": "fall_detected", "n": n}, "room_001")
            await asyncio.sleep(0.005)
        results = await flooders
        alerts = []
        while len(alerts) < published:
            alerts.append(await wait_for(good, lambda m: m["type"] == "activity_event"))
        # Still connected and answering.
        assert (await request(good, "heartbeat"))["type"] == "heartbeat"
    for code, replies in results:
        assert code == 1008
        bye = [m for m in replies if m["type"] == "disconnect"]
        assert bye and bye[-1]["data"]["reason"] == "rate_limit_flood"
        errors = [m for m in replies if m["type"] == "error"]
        # Answered within the limits (60 a minute in general, 10 for the malformed
        # subscribes), then rate-limit notices at most once a second per category: a
        # flood is not answered with a flood.
        assert 0 < len(errors) <= 80
        assert {e["data"]["error_code"] for e in errors} <= {
            "INVALID_MESSAGE", "UNKNOWN_MESSAGE_TYPE", "RATE_LIMIT_EXCEEDED"}
    assert [m["data"]["n"] for m in alerts] == list(range(published))
    seqs = [m["metadata"]["sequence"] for m in alerts]
    assert seqs == list(range(seqs[0], seqs[0] + published)), "no gaps"


# -- callbacks that raise or block ---------------------------------------------------------
async def test_callbacks_that_raise_or_block_do_not_stall_the_pipeline():
    release = threading.Event()
    with Server(config={"callback_queue_capacity": 16}) as s:
        s.add_environment("room_001")
        s.simulate("room_001", "walk", seed=1, duration_s=30, speed=1)

        def raises(data):
            raise RuntimeError("a bug in user code")

        s.on("pose_data", raises)
        async with connect(s, s.issue_token("t")) as ws:
            await wait_for(ws)
            await request(ws, "subscribe", {"subscriptions": [
                {"event_type": "pose_data", "quality": "high"}]})

            async def phase(frames: int) -> tuple:
                answered = s.environment_stats("room_001")["model"]["windows_answered"]
                got = 0
                while got < frames:
                    await wait_for(ws, lambda m: m["type"] == "pose_data")
                    got += 1
                return got, s.environment_stats("room_001")["model"]["windows_answered"] - answered

            await phase(5)  # the model is warm
            got, answered = await phase(30)
            # Every window the model answered became a frame for the client.
            assert got >= answered - 2
            assert s.callback_errors >= 20
            # Now a callback that never returns: the callback thread is stuck, its queue
            # fills and the excess is counted; clients still get every frame.
            s.off("pose_data", raises)
            s.on("pose_data", lambda data: release.wait(30))
            got, answered = await phase(60)
            assert got >= answered - 2
            dropped = int(re.search(r"^wdp_callback_dropped_total (\d+)$", s.metrics(),
                                    re.MULTILINE).group(1))
            assert dropped >= 60 - 16 - 2
    release.set()


# -- the server stopped and started --------------------------------------------------------
async def test_a_restarted_server_tells_a_resuming_client_its_session_is_gone():
    secret = "restart-secret-0123456789abcdef"
    first = Server(jwt_secret=secret).start()
    port = first.port
    first.add_environment("room_001")
    token = first.issue_token("me")
    async with connect(first, token) as ws:
        session = (await wait_for(ws))["data"]["session_id"]
        await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        first.publish("activity_event", {"event_type": "fall_detected", "n": 1}, "room_001")
        last = (await wait_for(ws, lambda m: m["type"] == "activity_event"))["metadata"]["sequence"]
        await asyncio.get_running_loop().run_in_executor(None, first.stop)
        bye = await wait_for(ws, lambda m: m["type"] == "disconnect")
        # Sessions live in the server process: a stop ends them, and says so.
        assert bye["data"]["reason"] == "server_shutdown" and bye["data"]["resumable"] is False
    second = Server(port=port, jwt_secret=secret).start()
    try:
        second.add_environment("room_001")
        async with connect(second, token) as ws:
            hello = await wait_for(ws)
            assert hello["data"]["session_id"] != session
            err = await request(ws, "resume", {"session_id": session, "last_sequence": last})
            assert err["data"]["error_code"] == "RESUME_FAILED"
            assert "unknown or expired session" in err["data"]["details"]["reason"]
            # The connection stays usable: subscribe again and carry on.
            await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
            second.publish("activity_event", {"event_type": "fall_detected", "n": 2}, "room_001")
            m = await wait_for(ws, lambda m: m["type"] == "activity_event")
            assert m["data"]["n"] == 2
    finally:
        second.stop()


# -- nothing lost: alerts by sequence across disconnects and resumes -----------------------
def original_sequence(m: dict) -> int:
    return m["metadata"].get("replayed_from", m["metadata"]["sequence"])



async def test_every_alert_reaches_every_matching_subscription_once_in_order():
    # Alerts are published in bursts of 10: a capacity of 32 holds a burst for a client
    # that reads, not for one that does not.
    config = {"alert_queue_capacity": 32, "write_timeout_s": 0.5, "resume_ttl_s": 30}
    with Server(config=config) as s:
        for env in ("room_a", "room_b"):
            s.add_environment(env)
        token = s.issue_token("t")
        url = f"{s.url}?token={token}"
        subs = {
            # reads everything as it comes
            "steady": [{"event_type": "activity_event"}, {"event_type": "occupancy_update"}],
            # never reads until the server gives up on it (slow_consumer), then resumes
            "slow": [{"event_type": "activity_event", "filters": {"environment_id": "room_a"}},
                     {"event_type": "tracking_update"}],
            # its connection breaks mid-stream (no close frame), then it resumes
            "dropped": [{"event_type": "occupancy_update", "filters": {"environment_id": "room_b"}},
                        {"event_type": "tracking_update"}],
        }
        kinds = [("activity_event", "room_a"), ("occupancy_update", "room_b"),
                 ("tracking_update", "room_a"), ("activity_event", "room_b"),
                 ("occupancy_update", "room_a"), ("tracking_update", "room_b")]
        # Big tracking updates fill the slow client's socket buffers.
        pad = os.urandom(100_000).hex()
        published: list = []

        def publish(n: int) -> None:
            kind, env = kinds[n % len(kinds)]
            data = {"n": n, "event_type": "fall_detected"}
            if kind == "tracking_update":
                data["pad"] = pad
            s.publish(kind, data, env)
            published.append((kind, env, n))

        conns, sessions, got = {}, {}, {name: [] for name in subs}
        for name, spec in subs.items():
            ws = await websockets.connect(url, compression=None, max_size=None,
                                          max_queue=1 if name == "slow" else None)
            sessions[name] = decode(await ws.recv())["data"]["session_id"]
            await request(ws, "subscribe", {"subscriptions": spec})
            conns[name] = ws
        readers = {name: asyncio.create_task(read_all(conns[name], got[name], quiet=30))
                   for name in ("steady", "dropped")}
        for n in range(150):
            publish(n)
            if n % 10 == 9:
                await asyncio.sleep(0.01)
        conns["dropped"].transport.abort()  # alerts in flight are lost with the socket
        await readers["dropped"]
        for n in range(150, 300):
            publish(n)
            if n % 10 == 9:
                await asyncio.sleep(0.01)
        deadline = time.monotonic() + 10
        while "wdp_slow_consumer_disconnects_total 1" not in s.metrics():
            assert time.monotonic() < deadline, "the server never gave up on the slow client"
            await asyncio.sleep(0.05)
        await read_all(conns["slow"], got["slow"], quiet=5)  # what reached it, then the close
        assert conns["slow"].close_code in (1013, 1006)
        # Both come back on new connections and resume where they were.
        for name in ("slow", "dropped"):
            last = max((m["metadata"]["sequence"] for m in got[name] if "sequence" in m["metadata"]),
                       default=0)
            ws = await websockets.connect(url, compression=None, max_size=None)
            await ws.recv()
            ack = await request(ws, "resume", {"session_id": sessions[name], "last_sequence": last})
            assert ack["type"] == "ack" and ack["data"]["alerts_lost"] is False, ack
            conns[name] = ws
            readers[name] = asyncio.create_task(read_all(ws, got[name], quiet=30))
        for n in range(300, 320):  # and live alerts after the resume
            publish(n)
        await asyncio.sleep(0)
        for name, spec in subs.items():
            expected = [n for kind, env, n in published if any(
                sub["event_type"] == kind
                and sub.get("filters", {}).get("environment_id", env) == env
                for sub in spec)]
            deadline = time.monotonic() + 10
            while [m["data"]["n"] for m in got[name] if m["type"] in dict(kinds)] != expected:
                ns = [m["data"]["n"] for m in got[name] if m["type"] in dict(kinds)]
                assert time.monotonic() < deadline, (
                    f"{name}: missing {sorted(set(expected) - set(ns))}, "
                    f"unexpected {sorted(set(ns) - set(expected))}, {len(ns)} for {len(expected)}")
                await asyncio.sleep(0.05)
            alerts = [m for m in got[name] if m["type"] in dict(kinds)]
            originals = [original_sequence(m) for m in alerts]
            assert originals == sorted(set(originals)), f"{name}: once each, in order"
            seqs = [m["metadata"]["sequence"] for m in got[name] if "sequence" in m["metadata"]]
            assert all(a < b for a, b in itertools.pairwise(seqs)), f"{name}: sequence goes forward"
        assert any("replayed_from" in m["metadata"] for m in got["slow"])
        bye = [m for m in got["slow"] if m["type"] == "disconnect"]
        if bye:
            # The goodbye got through, and its sequence (the client's last_sequence) is
            # past alerts that were never written to the client: those were replayed.
            assert bye[0]["data"]["reason"] == "slow_consumer"
            assert any(m["metadata"].get("replayed_from", 1 << 62) < bye[0]["metadata"]["sequence"]
                       for m in got["slow"])
        assert any("replayed_from" in m["metadata"] for m in got["dropped"])
        for task in readers.values():
            task.cancel()
        for ws in conns.values():
            await ws.close()


async def test_a_client_is_told_when_alerts_fell_out_of_the_history():
    with Server(config={"alert_history": 16, "resume_ttl_s": 30}) as s:
        s.add_environment("room_001")
        token = s.issue_token("t")
        async with connect(s, token) as ws:
            session = (await wait_for(ws))["data"]["session_id"]
            await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
            s.publish("activity_event", {"event_type": "fall_detected", "n": 0}, "room_001")
            last = (await wait_for(ws, lambda m: m["type"] == "activity_event"))["metadata"]["sequence"]
            ws.transport.abort()
        for n in range(1, 41):  # 40 alerts while away; the session keeps the last 16
            s.publish("activity_event", {"event_type": "fall_detected", "n": n}, "room_001")
        async with connect(s, token) as ws:
            await wait_for(ws)
            ack = await request(ws, "resume", {"session_id": session, "last_sequence": last})
            assert ack["data"]["alerts_lost"] is True
            assert ack["data"]["replayed"] == 16
            assert ack["data"]["oldest_available_sequence"] > last + 1
            replayed = [await wait_for(ws, lambda m: m["type"] == "activity_event") for _ in range(16)]
            assert [m["data"]["n"] for m in replayed] == list(range(25, 41))


async def test_alerts_published_during_a_resume_come_after_the_replay():
    # Publishers never pause while a client drops and resumes, again and again: what was
    # replayed and what is new must arrive in publish order, each once. Several publishers
    # at once keep an event between its offer to the old session and its offer to the new
    # one (the window a resume used to slip into: the event was logged by the old session,
    # replayed, then delivered live again) at nearly every resume.
    stop = threading.Event()
    config = {"resume_ttl_s": 30, "alert_queue_capacity": 100_000, "alert_history": 100_000,
              "alert_history_bytes": 1 << 30}
    publishers = 3
    with Server(config=config) as s:
        s.add_environment("room_001")
        token = s.issue_token("t")
        published = [0] * publishers
        # Idle sessions offered each event between the old session and the new one widen
        # the window further.
        bystanders = [await connect(s, s.issue_token("b")) for _ in range(50)]

        def publisher(k: int) -> None:
            while not stop.is_set():
                s.publish("activity_event",
                          {"event_type": "fall_detected", "k": k, "n": published[k]}, "room_001")
                published[k] += 1
                if published[k] % 4 == 0:
                    time.sleep(0.001)

        got: list = []
        last = 0
        ws = await connect(s, token)
        session = (await wait_for(ws))["data"]["session_id"]
        await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        threads = [threading.Thread(target=publisher, args=(k,)) for k in range(publishers)]
        for t in threads:
            t.start()
        try:
            for cycle in range(40):
                for _ in range(10):
                    m = await wait_for(ws, lambda m: m["type"] == "activity_event")
                    got.append((m["data"]["k"], m["data"]["n"]))
                    last = max(last, m["metadata"]["sequence"])
                ws.transport.abort()
                if cycle % 6 == 0:
                    # New bystanders join after the session's connection, so some sit
                    # between it and the next one in the bus.
                    for b in bystanders[:10]:
                        b.transport.abort()
                    bystanders = bystanders[10:] + [await connect(s, s.issue_token("b"))
                                                    for _ in range(10)]
                ws = await connect(s, token)
                await wait_for(ws)
                await send(ws, "resume", {"session_id": session, "last_sequence": last})
                # Read through the ack: alerts may follow it at once.
                while True:
                    m = await wait_for(ws)
                    last = max(last, m["metadata"]["sequence"])
                    if m["type"] == "activity_event":
                        got.append((m["data"]["k"], m["data"]["n"]))
                    elif m["type"] == "ack":
                        assert m["data"]["alerts_lost"] is False
                        break
        finally:
            stop.set()
            for t in threads:
                t.join()
        seen = {k: -1 for k in range(publishers)}
        for k, n in got:
            seen[k] = max(seen[k], n)
        while any(seen[k] != published[k] - 1 for k in range(publishers)):
            m = await wait_for(ws, lambda m: m["type"] == "activity_event")
            got.append((m["data"]["k"], m["data"]["n"]))
            seen[m["data"]["k"]] = m["data"]["n"]
        await ws.close()
        for b in bystanders:
            b.transport.abort()
    for k in range(publishers):
        mine = [n for kk, n in got if kk == k]
        assert mine == list(range(mine[0], published[k])), f"publisher {k}: every alert once, in order"
