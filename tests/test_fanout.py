"""The fan-out write path: batched writes keep order and lose nothing; a client that falls
behind (owes more than twice its socket buffer, in the kernel and our queue, for
``alert_max_wait_s``) is cut, not only by how many alerts wait, and resumes with every
alert; a client that reads in bursts but keeps up over time is never cut."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import time

import websockets
from wifi_densepose import Server

from .conftest import decode, read_all, request


async def test_a_burst_written_in_batches_arrives_whole_and_in_order():
    # 3,000 alerts published at once queue up behind the writer, which writes them many
    # to a flush: every one arrives, in publish order, with no sequence skipped.
    config = {"alert_queue_capacity": 10_000, "alert_max_wait_s": 60.0, "permessage_deflate": False}
    with Server(config=config) as s:
        s.add_environment("room_001")
        url = f"{s.url}?token={s.issue_token('t')}"
        async with websockets.connect(url, compression=None, max_size=None) as ws:
            await ws.recv()  # connection_status
            ack = await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
            assert ack["type"] == "ack"
            pad = "x" * 700  # several messages to a write, several writes to a batch
            for n in range(3000):
                s.publish("activity_event", {"event_type": "fall_detected", "n": n, "pad": pad},
                          "room_001")
            got: list = []
            while len([m for m in got if m["type"] == "activity_event"]) < 3000:
                got.append(decode(await asyncio.wait_for(ws.recv(), 10)))
        alerts = [m for m in got if m["type"] == "activity_event"]
        assert [m["data"]["n"] for m in alerts] == list(range(3000))
        seqs = [m["metadata"]["sequence"] for m in alerts]
        assert all(b == a + 1 for a, b in itertools.pairwise(seqs)), "no sequence skipped"


def metric(server, name: str) -> int:
    m = re.search(rf"^{name} (\d+)$", server.metrics(), re.MULTILINE)
    assert m, name
    return int(m.group(1))


async def test_a_lagging_client_is_cut_when_it_stays_behind_and_resumes_with_every_one():
    # The queue may hold 100,000 alerts and a write may stall for 60 s: only the backlog
    # judge (over twice the socket buffer for 0.3 s) can cut this client, which stops
    # reading.
    config = {"alert_queue_capacity": 100_000, "write_timeout_s": 60.0, "alert_max_wait_s": 0.3,
              "resume_ttl_s": 30, "alert_history": 10_000, "alert_history_bytes": 1 << 30,
              "permessage_deflate": False}
    with Server(config=config) as s:
        s.add_environment("room_001")
        url = f"{s.url}?token={s.issue_token('t')}"
        # max_queue=1: the client library stops reading from the socket, which fills.
        slow = await websockets.connect(url, compression=None, max_size=None, max_queue=1)
        session_id = decode(await slow.recv())["data"]["session_id"]
        ack = await request(slow, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        assert ack["type"] == "ack"
        pad = os.urandom(50_000).hex()  # 100 KB alerts: the socket's buffers fill quickly
        published = 0
        started = time.monotonic()
        while "wdp_slow_consumer_disconnects_total 1" not in s.metrics():
            assert time.monotonic() - started < 20, "the server never cut the lagging client"
            s.publish("activity_event", {"event_type": "fall_detected", "n": published, "pad": pad},
                      "room_001")
            published += 1
            await asyncio.sleep(0.005)
        # Cut long before the write timeout (60 s) or the queue's capacity could.
        assert time.monotonic() - started < 15
        assert metric(s, "wdp_clients_behind_total") >= 1
        got: list = []
        await read_all(slow, got, quiet=5)
        bye = [m for m in got if m["type"] == "disconnect"]
        if bye:  # the goodbye may not fit a full socket; the close code says the same
            assert bye[0]["data"]["reason"] == "slow_consumer" and bye[0]["data"]["resumable"]
        assert slow.close_code in (1013, 1006)
        last = max((m["metadata"]["sequence"] for m in got if m["type"] == "activity_event"),
                   default=0)
        async with websockets.connect(url, compression=None, max_size=None) as ws:
            await ws.recv()
            ack = await request(ws, "resume", {"session_id": session_id, "last_sequence": last})
            assert ack["type"] == "ack" and ack["data"]["alerts_lost"] is False, ack
            for n in range(published, published + 5):  # live alerts after the resume
                s.publish("activity_event", {"event_type": "fall_detected", "n": n}, "room_001")
            await read_all(ws, got, quiet=2)
        ns = [m["data"]["n"] for m in got if m["type"] == "activity_event"]
        assert ns == list(range(published + 5)), "every alert once, in order"


async def test_a_client_that_reads_in_bursts_but_keeps_up_is_never_cut():
    # Six times: 30 alerts of 16 KB (480 KB) are published while the client does not read
    # for 0.3 s; they fill its small receive buffer, the client library's buffer and the
    # server's send buffer (32 KiB, doubled by Linux) and leave more waiting in our queue,
    # over the 64 KiB bound. Then it reads everything. Behind six times, each for less than
    # the 3 s grace: never cut, and every alert arrives once, in order.
    config = {"alert_queue_capacity": 100_000, "write_timeout_s": 60.0, "alert_max_wait_s": 3.0,
              "socket_send_buffer_bytes": 32_768, "permessage_deflate": False}
    rounds, per_round, pad = 6, 30, "x" * 16_000
    with Server(config=config) as s:
        s.add_environment("room_001")
        url = f"{s.url}?token={s.issue_token('t')}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        sock.connect(("127.0.0.1", s.port))
        sock.setblocking(False)
        got: list = []
        async with websockets.connect(url, sock=sock, compression=None, max_size=None,
                                      max_queue=4) as ws:
            await ws.recv()  # connection_status
            ack = await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
            assert ack["type"] == "ack"
            for r in range(rounds):
                for n in range(r * per_round, (r + 1) * per_round):
                    s.publish("activity_event", {"event_type": "fall_detected", "n": n, "pad": pad},
                              "room_001")
                await asyncio.sleep(0.3)  # not reading
                while len([m for m in got if m["type"] == "activity_event"]) < (r + 1) * per_round:
                    got.append(decode(await asyncio.wait_for(ws.recv(), 10)))
                    assert got[-1]["type"] != "disconnect", got[-1]
        alerts = [m for m in got if m["type"] == "activity_event"]
        assert [m["data"]["n"] for m in alerts] == list(range(rounds * per_round))
        assert metric(s, "wdp_slow_consumer_disconnects_total") == 0
        # It really was behind each time: the pauses were not absorbed by buffers.
        assert metric(s, "wdp_clients_behind_total") >= rounds
