"""Faults a deployment meets: garbage on the UDP port, clients that vanish mid-frame,
reconnect storms, clients that never read. The server keeps serving everyone else and
nothing leaks."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import time

import numpy as np
import websockets
from wifi_densepose import Server
from wifi_densepose.udp import encode_frame

from .conftest import connect, request, wait_for


def metric(server: Server, name: str) -> int:
    return int(re.search(rf"^{name} (\d+)$", server.metrics(), re.MULTILINE).group(1))


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
            # The kernel drops datagrams when the socket buffer overflows, so send the good
            # frame until it gets through: the listener must still be decoding.
            for _ in range(100):
                sock.sendto(good, ("127.0.0.1", listener.port))
                time.sleep(0.05)
                if listener.stats()["frames"]:
                    break
        stats = listener.stats()
        # Loopback may drop some datagrams under a flood; every one that arrived is counted.
        assert stats["bad"] + stats["frames"] == stats["datagrams"]
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
                except (asyncio.TimeoutError, TimeoutError):
                    break
        # The reader got (nearly) every frame while the other socket sat full.
        assert got >= 55, got
    stuck.transport.abort()  # it never reads, so a close handshake could not finish
