"""Several nodes, one system: the bus on a real broker (Redis Streams), behind nginx.

Every test starts its own redis-server on a free loopback port (no persistence); the
failover test also starts nginx as the WebSocket reverse proxy (docs/deployment.md) in
front of two node processes. scripts/test.sh installs both from Debian when missing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets
from wifi_densepose import Server

from .broker_helpers import Nginx, Node, Redis, find
from .conftest import connect, http_get, send, wait_for

pytestmark = pytest.mark.skipif(
    find("redis-server") is None,
    reason="redis-server is not installed (scripts/test.sh installs Debian's redis-server)",
)

SECRET = "broker-test-secret-of-at-least-32-bytes"


@pytest.fixture
def redis(tmp_path) -> Iterator[Redis]:
    r = Redis(tmp_path).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def nodes(redis) -> Iterator[Any]:
    """Makes in-process nodes on the test's broker; stops them after the test."""
    made: list[Server] = []
    prefix = f"t{uuid.uuid4().hex[:8]}"

    def make(node_id: str, **broker: Any) -> Server:
        config = {
            "heartbeat_timeout_s": 30.0,
            "resume_ttl_s": 30.0,
            "performance_interval_s": 0,
            "broker": {"url": redis.url, "node_id": node_id, "key_prefix": prefix,
                       "reconnect_max_s": 0.5, "discovery_interval_s": 0.1, **broker},
        }
        server = Server(jwt_secret=SECRET, config=config).start()
        made.append(server)
        return server

    yield make
    for s in made:
        s.stop()


def health(server: Any) -> dict:
    # /health names only the environments a token grants.
    token = server.issue_token("health")
    status, _, body = http_get(f"{server.http_url}/health", {"Authorization": f"Bearer {token}"})
    assert status == 200
    return json.loads(body)


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        time.sleep(0.02)


def knows(server: Server, *envs: str) -> bool:
    return set(envs) <= set(health(server)["environments"])


async def subscribe(ws: Any, *specs: dict) -> dict:
    await send(ws, "subscribe", {"subscriptions": list(specs)})
    ack = await wait_for(ws, lambda m: m["type"] in ("ack", "error"))
    assert ack["type"] == "ack", ack
    return ack


async def drain(ws: Any, seconds: float) -> list[dict]:
    """Every event message that arrives within ``seconds``."""
    out: list[dict] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await wait_for(ws, lambda m: True, left)
        except TimeoutError:
            break
        out.append(msg)
    return out


# -- the default stays the default -----------------------------------------------------

async def test_without_a_broker_nothing_changes(densepose_server, densepose_token):
    h = health(densepose_server)
    assert h["status"] == "ok" and "broker" not in h
    assert densepose_server.node_id is None and densepose_server.broker_status() is None
    async with connect(densepose_server, densepose_token) as ws:
        first = json.loads(await ws.recv())
        assert "node_id" not in first["data"]
        await subscribe(ws, {"event_type": "activity_event"})
        densepose_server.publish("activity_event", {"event_type": "x"}, "room_001")
        msg = await wait_for(ws, lambda m: m["type"] == "activity_event")
        assert "event_id" not in msg["metadata"]
    assert "wdp_broker" not in densepose_server.metrics()
    with pytest.raises(ValueError, match="no broker"):
        densepose_server.claim_environment("room_001")


def test_broker_config_is_checked():
    with pytest.raises(ValueError, match="broker.url"):
        Server(config={"broker": {}})
    with pytest.raises(ValueError, match="redis://"):
        Server(config={"broker": {"url": "http://x"}})
    with pytest.raises(ValueError, match="unknown field `urls`"):
        Server(config={"broker": {"urls": "redis://127.0.0.1:1"}})


# -- events cross nodes -----------------------------------------------------------------

async def test_a_client_on_each_node_receives_what_the_other_published(nodes):
    a, b = nodes("a"), nodes("b")
    a.add_environment("ward_a")
    b.add_environment("ward_b")
    wait_until(lambda: knows(a, "ward_a", "ward_b") and knows(b, "ward_a", "ward_b"),
               what="both nodes know both environments")
    token = a.issue_token("nurse")  # the nodes share the secret: any node's token works
    async with connect(a, token) as wa, connect(b, token) as wb:
        first = json.loads(await wa.recv())
        assert first["data"]["node_id"] == "a"
        await subscribe(wa, {"event_type": "activity_event"})
        # Filtered on B: B's client wants high severity only.
        await subscribe(wb, {"event_type": "activity_event", "filters": {"severity": ["high"]}})
        b.publish("activity_event", {"event_type": "fall_detected", "severity": "high", "n": 1},
                  "ward_b")
        a.publish("activity_event", {"event_type": "sitting", "severity": "low", "n": 2},
                  "ward_a")
        a.publish("activity_event", {"event_type": "fall_detected", "severity": "high", "n": 3},
                  "ward_a")
        got_a = [await wait_for(wa, lambda m: m["type"] == "activity_event") for _ in range(3)]
        got_b = [await wait_for(wb, lambda m: m["type"] == "activity_event") for _ in range(2)]
        assert sorted(m["data"]["n"] for m in got_a) == [1, 2, 3]
        # (Two nodes' appends race to the broker: no order between the environments here.)
        assert sorted(m["data"]["n"] for m in got_b) == [1, 3]
        assert not [m for m in await drain(wb, 0.3) if m["type"] == "activity_event"]
        # The same event has the same id (its stream position) on every node.
        ids_a = {m["data"]["n"]: m["metadata"]["event_id"] for m in got_a}
        ids_b = {m["data"]["n"]: m["metadata"]["event_id"] for m in got_b}
        assert ids_a[1] == ids_b[1] and ids_a[3] == ids_b[3]
        assert ids_a[2] != ids_a[3]
        for m in got_a + got_b:
            assert m["data"]["environment_id"] in ("ward_a", "ward_b")
    assert b.broker_status()["connected"] is True
    assert "wdp_broker_received_total" in a.metrics()


async def test_frames_from_one_node_are_throttled_on_the_other(nodes):
    a, b = nodes("a"), nodes("b")
    a.add_environment("ward_a")
    wait_until(lambda: knows(b, "ward_a"), what="b learns ward_a")
    token = b.issue_token("viewer")
    async with connect(b, token) as wb:
        await subscribe(wb, {"event_type": "pose_data", "filters": {"environment_id": "ward_a"},
                             "throttle": {"max_fps": 2}})
        for i in range(20):
            a.publish("pose_data", {"frame_id": i, "persons": []}, "ward_a")
            await asyncio.sleep(0.05)  # 20 fps for 1 s
        frames = [m for m in await drain(wb, 0.5) if m["type"] == "pose_data"]
        assert 1 <= len(frames) <= 4, [m["data"]["frame_id"] for m in frames]
        ids = [m["metadata"]["event_id"] for m in frames]
        assert len(set(ids)) == len(ids)
        await send(wb, "connection_status")
        status = await wait_for(wb, lambda m: m["type"] == "connection_status"
                                and m["data"]["throttled"] > 0)
        assert status["data"]["throttled"] >= 14


async def test_a_pipeline_on_one_node_serves_clients_of_another(nodes):
    a, b = nodes("a"), nodes("b")
    a.add_environment("lab")
    wait_until(lambda: knows(b, "lab"), what="b learns lab")
    async with connect(b, b.issue_token("viewer")) as wb:
        await subscribe(wb, {"event_type": "hardware_event", "filters": {"environment_id": "lab"}})
        csi = (np.ones((3, 3, 30)) + 1j).astype(np.complex64)
        a.inject_csi("lab", csi)  # the pipeline on A sees its first frame
        msg = await wait_for(wb, lambda m: m["type"] == "hardware_event", 10)
        assert msg["data"]["event"] == "source_connected"
        assert msg["data"]["source_id"] == "inject" and "event_id" in msg["metadata"]


# -- a node dies: its client resumes on the other, behind nginx ------------------------

@pytest.mark.skipif(find("nginx") is None, reason="nginx is not installed")
async def test_killed_node_client_resumes_on_the_other_nothing_lost_or_twice(redis, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    a = Node(redis.url, "a", SECRET, ["ward"], key_prefix=prefix)
    b = Node(redis.url, "b", SECRET, ["ward"], key_prefix=prefix)
    proxy = Nginx(tmp_path, [a.port, b.port]).start()
    count = 150
    try:
        import jwt

        token = jwt.encode({"sub": "nurse", "exp": int(time.time()) + 600}, SECRET, "HS256")
        url = f"{proxy.ws_url}?token={token}"
        kw: dict = {"subprotocols": ["wifi-densepose-v1"], "max_size": None}
        before: list[dict] = []
        async with websockets.connect(url, **kw) as ws:
            status = json.loads(await ws.recv())["data"]
            session_id, served_by = status["session_id"], status["node_id"]
            victim, survivor = (a, b) if served_by == "a" else (b, a)
            await subscribe(ws, {"event_type": "activity_event",
                                 "filters": {"environment_id": "ward"}})
            # The environment's events come from the node that survives.
            survivor.cmd("produce", env="ward", count=count, interval_s=0.02)
            while len(before) < 30:
                before.append(await wait_for(ws, lambda m: m["type"] == "activity_event"))
            victim.kill()
            # The connection breaks without a close frame.
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if msg["type"] == "activity_event":
                        before.append(msg)
        await asyncio.sleep(1.0)  # the producer goes on meanwhile: ~50 alerts missed
        last_sequence = max(m["metadata"]["sequence"] for m in before)
        last_event_id = before[-1]["metadata"]["event_id"]
        after: list[dict] = []
        async with websockets.connect(url, **kw) as ws:
            status = json.loads(await ws.recv())["data"]
            assert status["node_id"] == survivor.node_id
            await send(ws, "resume", {"session_id": session_id, "last_sequence": last_sequence,
                                      "last_event_ids": {"ward": last_event_id}})
            ack = await wait_for(ws, lambda m: m["type"] in ("ack", "error"), 10)
            assert ack["type"] == "ack", ack
            assert ack["data"]["session_id"] == session_id
            assert ack["data"]["resumed_from_node"] == victim.node_id
            assert ack["data"]["alerts_lost"] is False
            assert ack["data"]["replayed"] >= 20, ack["data"]
            assert ack["metadata"]["sequence"] > last_sequence
            while not after or after[-1]["data"]["n"] < count - 1:
                after.append(await wait_for(ws, lambda m: m["type"] == "activity_event", 10))
            assert not [m for m in await drain(ws, 0.3) if m["type"] == "activity_event"]
        received = before + after
        # Nothing lost, nothing twice, in order: by the producer's counter and by event id.
        assert [m["data"]["n"] for m in received] == list(range(count))
        ids = [tuple(map(int, m["metadata"]["event_id"].split("-"))) for m in received]
        assert ids == sorted(ids) and len(set(ids)) == count
        # Sequence numbers only go up, across the two connections.
        seqs = [m["metadata"]["sequence"] for m in received]
        assert seqs == sorted(seqs) and len(set(seqs)) == count
        assert min(m["metadata"]["sequence"] for m in after) > last_sequence
        metrics = survivor.cmd("produced")
        assert metrics["produced"] == count
    finally:
        proxy.stop()
        a.stop()
        b.stop()


async def test_the_python_client_resumes_across_nodes_by_itself(nodes):
    from wifi_densepose import Client

    a, b = nodes("a"), nodes("b")
    a.add_environment("ward")
    wait_until(lambda: knows(b, "ward"), what="b learns ward")
    token = a.issue_token("nurse")
    async with Client(a.url, token, backoff_s=0.05) as client:
        await client.subscribe("occupancy_update", environment_id="ward")
        b.publish("occupancy_update", {"current_occupancy": 1}, "ward")
        first = await client.recv(5)
        assert first["data"]["current_occupancy"] == 1
        assert client.last_event_ids["ward"] == first["metadata"]["event_id"]
        # The client's node shuts down; the client is pointed at the other (as a proxy
        # would do) and resumes there by itself.
        client.url = b.url
        await asyncio.to_thread(a.stop)
        for n in (2, 3):
            b.publish("occupancy_update", {"current_occupancy": n}, "ward")
        got = []
        while len(got) < 2:
            msg = await client.recv(10)
            if msg["type"] == "disconnect":
                assert msg["data"]["reason"] == "server_shutdown"
                assert msg["data"]["resumable"] is True  # on another node
            else:
                got.append(msg["data"]["current_occupancy"])
        assert got == [2, 3]
        assert client.reconnects == 1


# -- the broker goes away and comes back -------------------------------------------------

async def test_broker_restart_degrades_then_recovers(nodes, redis):
    a, b = nodes("a"), nodes("b")
    a.add_environment("ward_a")
    b.add_environment("ward_b")
    wait_until(lambda: knows(a, "ward_b"), what="a learns ward_b")
    async with connect(a, a.issue_token("ops")) as wa:
        await subscribe(wa, {"event_type": "system_event"}, {"event_type": "activity_event"})
        redis.stop()
        down = await wait_for(wa, lambda m: m["type"] == "system_event"
                              and m["data"]["event"] == "broker_unavailable", 10)
        assert down["data"]["node_id"] == "a" and down["data"]["severity"] == "error"
        wait_until(lambda: health(a)["status"] == "degraded"
                   and health(b)["status"] == "degraded", what="both nodes degraded")
        assert health(a)["broker"]["connected"] is False
        # A node keeps serving what it produces itself.
        a.publish("activity_event", {"event_type": "fall_detected", "n": 1}, "ward_a")
        local = await wait_for(wa, lambda m: m["type"] == "activity_event", 5)
        assert local["data"]["n"] == 1 and "event_id" not in local["metadata"]
        redis.start()  # same port, empty: the nodes register their environments again
        up = await wait_for(wa, lambda m: m["type"] == "system_event"
                            and m["data"]["event"] == "broker_recovered", 15)
        assert up["data"]["local_only_events"] >= 1
        wait_until(lambda: health(a)["status"] == "ok" and health(b)["status"] == "ok",
                   what="both nodes recover")
        # Events cross nodes again.
        b.publish("activity_event", {"event_type": "fall_detected", "n": 2}, "ward_b")
        crossed = await wait_for(wa, lambda m: m["type"] == "activity_event", 10)
        assert crossed["data"]["n"] == 2 and "event_id" in crossed["metadata"]
    assert health(a)["broker"]["outages"] == 1


async def test_a_node_that_starts_without_its_broker_serves_degraded(tmp_path):
    from .broker_helpers import free_port

    port = free_port()  # nothing listens there
    server = Server(jwt_secret=SECRET, config={
        "broker": {"url": f"redis://127.0.0.1:{port}", "reconnect_max_s": 0.2}}).start()
    try:
        server.add_environment("ward")
        h = health(server)
        assert h["status"] == "degraded" and h["broker"]["last_error"]
        async with connect(server, server.issue_token("x")) as ws:
            await subscribe(ws, {"event_type": "activity_event"})
            server.publish("activity_event", {"event_type": "y"}, "ward")
            msg = await wait_for(ws, lambda m: m["type"] == "activity_event", 5)
            assert msg["data"]["event_type"] == "y"
        # A resume of a session this node does not hold needs the broker: it says so.
        async with connect(server, server.issue_token("x")) as ws:
            await ws.recv()
            await send(ws, "resume", {"session_id": "session_elsewhere", "last_sequence": 3})
            reply = await wait_for(ws, lambda m: m["type"] in ("ack", "error"), 10)
            assert reply["data"]["error_code"] == "RESUME_FAILED"
            assert "broker" in reply["data"]["details"]["reason"]
    finally:
        server.stop()


# -- losing a node: its environments are taken over ------------------------------------

def test_a_dead_nodes_lease_is_taken_over(redis):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    a = Node(redis.url, "a", SECRET, ["ward"], key_prefix=prefix, lease_ttl_s=1.0)
    b = Node(redis.url, "b", SECRET, ["ward"], key_prefix=prefix, lease_ttl_s=1.0)
    try:
        assert a.cmd("claim", env="ward")["held"] is True
        assert b.cmd("claim", env="ward")["held"] is False
        time.sleep(1.5)  # past the TTL: A renews it
        assert b.cmd("claim", env="ward")["held"] is False
        assert b.cmd("holder", env="ward")["holder"] == "a"
        a.kill()
        deadline = time.monotonic() + 5
        while not b.cmd("claim", env="ward")["held"]:
            assert time.monotonic() < deadline, "the lease was not freed after the TTL"
            time.sleep(0.1)
        assert b.cmd("holder", env="ward")["holder"] == "b"
    finally:
        a.stop()
        b.stop()


def test_a_stopping_node_gives_its_leases_back(nodes):
    a, b = nodes("a"), nodes("b", lease_ttl_s=30)
    assert b.claim_environment("ward") is True and b.holds_lease("ward")
    assert a.claim_environment("ward") is False
    assert a.lease_holder("ward") == "b"
    assert b.broker_status()["leases"] == ["ward"]
    b.stop()
    assert a.claim_environment("ward") is True


def test_serve_takes_over_a_dead_nodes_environment(redis, tmp_path):
    """`wifi-densepose serve` on two nodes with the same environment: one runs its source,
    the other stands by and takes over when the first dies."""
    import selectors
    import subprocess
    import sys

    prefix = f"t{uuid.uuid4().hex[:8]}"

    def serve(node_id: str) -> subprocess.Popen:
        conf = tmp_path / f"{node_id}.toml"
        conf.write_text(f"""
[server]
port = 0
performance_interval_s = 0
[server.broker]
url = "{redis.url}"
node_id = "{node_id}"
key_prefix = "{prefix}"
lease_ttl_s = 1.0
[[environments]]
id = "ward"
source = "simulate"
scenario = "walk"
""")
        return subprocess.Popen([sys.executable, "-m", "wifi_densepose", "serve", "--config",
                                 str(conf)], stdout=subprocess.PIPE, text=True,
                                env={**__import__("os").environ,
                                     "WIFI_DENSEPOSE_JWT_SECRET": SECRET})

    # A cold `serve` loads ONNX Runtime and the model before its first environment line:
    # seconds on a quiet machine, more than 15 on a loaded 2-core one (seen in CI runs).
    def read_until(proc: subprocess.Popen, needle: str, timeout: float = 60) -> str:
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            if sel.select(max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                seen.append(line)
                if needle in line:
                    return line
                if not line:
                    break
        raise AssertionError(f"{needle!r} not printed; got {''.join(seen)!r}")

    a = serve("a")
    b = None
    try:
        read_until(a, "ward: simulated scenario")
        b = serve("b")
        line = read_until(b, "ward: simulated scenario")
        assert "standing by (node a runs it)" in line
        a.kill()
        read_until(b, "ward: took over (lease acquired by node b)", timeout=10)
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)


def sessions_held(server: Server) -> int:
    line = next(ln for ln in server.metrics().splitlines() if ln.startswith("wdp_sessions "))
    return int(line.split()[1])


async def test_a_session_resumed_elsewhere_ends_on_its_old_node(nodes):
    a, b = nodes("a"), nodes("b")
    a.add_environment("ward")
    wait_until(lambda: knows(b, "ward"), what="b learns ward")
    token = a.issue_token("nurse")
    ws = await connect(a, token)
    session_id = json.loads(await ws.recv())["data"]["session_id"]
    await subscribe(ws, {"event_type": "occupancy_update"})
    b.publish("occupancy_update", {"current_occupancy": 1}, "ward")
    seen = await wait_for(ws, lambda m: m["type"] == "occupancy_update")
    ws.transport.abort()  # the network goes: the session stays on A, detached
    await asyncio.sleep(0.2)  # (the loop closes the socket)
    wait_until(lambda: health(a)["connections"] == 0, what="a notices")
    assert sessions_held(a) == 1
    b.publish("occupancy_update", {"current_occupancy": 2}, "ward")
    async with connect(b, token) as ws2:
        await ws2.recv()
        await send(ws2, "resume", {"session_id": session_id,
                                   "last_sequence": seen["metadata"]["sequence"],
                                   "last_event_ids": {"ward": seen["metadata"]["event_id"]}})
        ack = await wait_for(ws2, lambda m: m["type"] in ("ack", "error"))
        assert ack["data"]["resumed_from_node"] == "a" and ack["data"]["replayed"] == 1
        replayed = await wait_for(ws2, lambda m: m["type"] == "occupancy_update")
        assert replayed["data"]["current_occupancy"] == 2
        # A is told through the broker and lets its copy go: nobody can resume it twice.
        wait_until(lambda: sessions_held(a) == 0, what="a drops the resumed session")


async def test_a_resume_past_the_capped_stream_says_alerts_were_lost(nodes):
    a, b = nodes("a", stream_maxlen=10), nodes("b", stream_maxlen=10)
    a.add_environment("ward")
    wait_until(lambda: knows(b, "ward"), what="b learns ward")
    token = a.issue_token("nurse")
    ws = await connect(a, token)
    session_id = json.loads(await ws.recv())["data"]["session_id"]
    await subscribe(ws, {"event_type": "activity_event"})
    a.publish("activity_event", {"event_type": "x", "n": 0}, "ward")
    seen = await wait_for(ws, lambda m: m["type"] == "activity_event")
    ws.transport.abort()
    await asyncio.sleep(0.2)
    for n in range(1, 1000):  # far past MAXLEN ~ 10 (Redis trims whole nodes of ~100)
        b.publish("activity_event", {"event_type": "x", "n": n}, "ward")
    await asyncio.sleep(0.5)
    async with connect(b, token) as ws2:
        await ws2.recv()
        await send(ws2, "resume", {"session_id": session_id, "last_sequence": 5,
                                   "last_event_ids": {"ward": seen["metadata"]["event_id"]}})
        ack = await wait_for(ws2, lambda m: m["type"] in ("ack", "error"))
        assert ack["type"] == "ack", ack
        assert ack["data"]["alerts_lost"] is True
        assert 0 < ack["data"]["replayed"] < 999
        got = [await wait_for(ws2, lambda m: m["type"] == "activity_event")
               for _ in range(ack["data"]["replayed"])]
        ns = [m["data"]["n"] for m in got]
        assert ns == sorted(ns) and ns[-1] == 999
