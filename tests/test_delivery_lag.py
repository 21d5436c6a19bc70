"""Delivery lag measured with WebSocket pings (``src/server/probe.rs``): a client that stops
reading is cut within ``alert_max_wait_s`` of its last answered ping even when its own
receive buffer holds everything (what no figure of our socket shows), and resumes with
every alert; a client that reads is never cut, and the pongs its library sends count
neither as messages for the flood limit nor as proof of life for the heartbeat timeout."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time

import pytest
import websockets
from wifi_densepose import Server
from wifi_densepose.errors import ConfigError

from .conftest import decode, read_all, request


def metric(server, name: str) -> int:
    m = re.search(rf"^{name} (\d+)$", server.metrics(), re.MULTILINE)
    assert m, name
    return int(m.group(1))



def big_receive_buffer_socket(port: int) -> socket.socket:
    """A connected socket whose receive buffer holds every alert of these tests: the
    server's socket then holds nothing unacknowledged (SIOCOUTQ near 0), its queue is empty,
    and only the pings can tell that the client is not reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def stalled_client_run(ping_interval: float, wait: float) -> tuple[bool, float, int]:
    """A client that stops reading after its subscription's ack while 2 KB alerts are
    published every 20 ms for up to ``wait`` seconds. Returns whether it was cut, when (s
    after it stopped), and the server's count of cuts for an unanswered ping. A cut client
    resumes and must get every alert once, in order."""
    config = {"alert_queue_capacity": 100_000, "write_timeout_s": 60.0, "alert_max_wait_s": 0.3,
              "resume_ttl_s": 30, "alert_history": 10_000, "permessage_deflate": False,
              "lag_ping_interval_s": ping_interval}
    with Server(config=config) as s:
        s.add_environment("room_001")
        url = f"{s.url}?token={s.issue_token('t')}"
        sock = big_receive_buffer_socket(s.port)
        # max_queue=1: once the application stops taking messages, the library stops
        # reading from the socket, so its pongs stop too (as a stuck client's would).
        ws = await websockets.connect(url, sock=sock, compression=None, max_size=None,
                                      max_queue=1, ping_interval=None)
        session_id = decode(await ws.recv())["data"]["session_id"]
        ack = await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        assert ack["type"] == "ack"
        pad = "x" * 2000
        published = 0
        stopped = time.monotonic()
        cut_after = None
        while time.monotonic() - stopped < wait:
            s.publish("activity_event", {"event_type": "fall_detected", "n": published, "pad": pad},
                      "room_001")
            published += 1
            await asyncio.sleep(0.02)
            if metric(s, "wdp_slow_consumer_disconnects_total") >= 1:
                cut_after = time.monotonic() - stopped
                break
        got: list = []
        if cut_after is not None:
            await read_all(ws, got, quiet=3)
            bye = [m for m in got if m["type"] == "disconnect"]
            assert bye and bye[0]["data"]["reason"] == "slow_consumer", got[-3:]
            assert bye[0]["data"]["resumable"]
            last = max((m["metadata"]["sequence"] for m in got if m["type"] == "activity_event"),
                       default=0)
            async with websockets.connect(url, compression=None, max_size=None) as again:
                await again.recv()
                ack = await request(again, "resume", {"session_id": session_id,
                                                      "last_sequence": last})
                assert ack["type"] == "ack" and ack["data"]["alerts_lost"] is False, ack
                await read_all(again, got, quiet=2)
            ns = [m["data"]["n"] for m in got if m["type"] == "activity_event"]
            assert ns == list(range(published)), "every alert once, in order"
        else:
            await ws.close()
        lag_cuts = metric(s, "wdp_lag_cuts_total")
    return cut_after is not None, cut_after or 0.0, lag_cuts


async def test_a_client_that_stops_reading_is_cut_by_its_unanswered_ping_and_resumes():
    # Every alert fits the client's receive buffer: no write stalls, our queue stays empty,
    # the kernel holds nothing unacknowledged. Only the ping goes unanswered.
    cut, after, lag_cuts = await stalled_client_run(ping_interval=0.01, wait=15.0)
    assert cut, "never cut"
    assert lag_cuts == 1
    # 0.3 s of grace, and a margin for a loaded machine.
    assert after < 5.0, after


async def test_without_pings_the_same_client_is_not_cut():
    # The control: the same stalled client, pings off. Nothing else can see it within the
    # time the pings needed, which shows the cut above was theirs.
    cut, _, lag_cuts = await stalled_client_run(ping_interval=0.0, wait=2.5)
    assert not cut and lag_cuts == 0


@contextlib.asynccontextmanager
async def alerts_subscriber(s: Server):
    """A client (answering the server's pings, sending none of its own) subscribed to
    activity_event."""
    url = f"{s.url}?token={s.issue_token('t')}"
    async with websockets.connect(url, compression=None, max_size=None,
                                  ping_interval=None) as ws:
        await ws.recv()
        ack = await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        assert ack["type"] == "ack"
        yield ws


async def test_a_reading_client_is_never_cut_and_its_pongs_are_not_messages():
    # Alerts every 5 ms for 4 s to a client that reads them all, with a grace of 0.1 s:
    # pings go out every 10 ms, and the pongs come back. 400 pongs in 4 s would pass the
    # flood limit (300 messages in 10 s) if they counted as messages.
    config = {"alert_queue_capacity": 100_000, "alert_max_wait_s": 0.1, "permessage_deflate": False,
              "lag_ping_interval_s": 0.01}
    with Server(config=config) as s:
        s.add_environment("room_001")
        got: list = []
        async with alerts_subscriber(s) as ws:

            async def publish() -> None:
                for n in range(800):
                    s.publish("activity_event", {"event_type": "fall_detected", "n": n}, "room_001")
                    await asyncio.sleep(0.005)

            async def read() -> None:
                while len([m for m in got if m["type"] == "activity_event"]) < 800:
                    got.append(decode(await asyncio.wait_for(ws.recv(), 10)))
                    assert got[-1]["type"] != "disconnect", got[-1]

            await asyncio.gather(publish(), read())
        assert [m["data"]["n"] for m in got if m["type"] == "activity_event"] == list(range(800))
        assert metric(s, "wdp_slow_consumer_disconnects_total") == 0
        assert metric(s, "wdp_lag_cuts_total") == 0
        pongs = metric(s, "wdp_delivery_lag_seconds_count")
        assert pongs >= 20, f"pings answered: {pongs}"
        # The subscribe is the one message this client sent (the count is server-wide).
        assert metric(s, "wdp_client_messages_total") < 5


async def test_pongs_to_our_pings_are_not_proof_of_life():
    # The client's library answers every ping, but the client itself sends nothing: the
    # heartbeat timeout still closes it.
    config = {"heartbeat_timeout_s": 1.0, "permessage_deflate": False, "lag_ping_interval_s": 0.01}
    with Server(config=config) as s:
        s.add_environment("room_001")
        got: list = []
        async with alerts_subscriber(s) as ws:
            started = time.monotonic()
            n = 0
            while time.monotonic() - started < 8 and metric(s, "wdp_heartbeat_timeouts_total") == 0:
                s.publish("activity_event", {"event_type": "fall_detected", "n": n}, "room_001")
                n += 1
                await asyncio.sleep(0.02)
                while True:  # keep reading (and so answering pings)
                    try:
                        got.append(decode(await asyncio.wait_for(ws.recv(), 0.001)))
                    except TimeoutError:
                        break
                    except websockets.ConnectionClosed:
                        break
            assert metric(s, "wdp_heartbeat_timeouts_total") == 1
            assert metric(s, "wdp_delivery_lag_seconds_count") >= 5, "pings were answered"


def test_the_lag_window_is_a_setting_with_a_range():
    for bad in (0, 5000):
        with pytest.raises(ConfigError, match="lag_window_messages"):
            Server(config={"lag_window_messages": bad})


async def test_every_alert_arrives_in_order_under_a_wider_lag_window():
    # 64 messages unconfirmed before a client counts as lagging (the default is 8): a
    # burst of 300 alerts faster than one client reads them still arrives whole and in
    # order.
    with Server(config={"lag_window_messages": 64, "permessage_deflate": False}) as s:
        s.add_environment("room_001")
        async with alerts_subscriber(s) as ws:
            for n in range(300):
                s.publish("activity_event", {"event_type": "fall_detected", "n": n}, "room_001")
            got: list = []
            await read_all(ws, got, quiet=1.0)
            ns = [m["data"]["n"] for m in got if m["type"] == "activity_event"]
            assert ns == list(range(300))
