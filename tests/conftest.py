"""Shared helpers for the server suites. The server itself comes from the project's own
pytest plugin (``densepose_server``, ``densepose_token``: wifi_densepose.testing)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from wifi_densepose.testing import decode, wait_for

__all__ = ["connect", "decode", "http_get", "request", "send", "wait_for"]


def connect(server: Any, token: str | None, **params: Any) -> Any:
    """An un-awaited websockets connection to the server (use with ``async with``)."""
    q = dict(params)
    if token is not None:
        q.setdefault("token", token)
    from urllib.parse import urlencode

    url = server.url + (f"?{urlencode(q)}" if q else "")
    kwargs: dict = {"subprotocols": ["wifi-densepose-v1"], "compression": None, "max_size": None,
                    "max_queue": None}
    return websockets.connect(url, **kwargs)


async def send(ws: Any, message_type: str, data: dict | None = None) -> None:
    await ws.send(
        json.dumps(
            {
                "type": message_type,
                "timestamp": datetime.now(UTC).isoformat(),
                "data": data if data is not None else {},
            }
        )
    )


async def request(ws: Any, message_type: str, data: dict | None = None, timeout: float = 5) -> dict:
    """Sends a message and returns the next ack/error/status/heartbeat/disconnect reply."""
    await send(ws, message_type, data)
    return await wait_for(
        ws,
        lambda m: m["type"] in ("ack", "error", "connection_status", "disconnect")
        or (message_type == "heartbeat" and m["type"] == "heartbeat"),
        timeout,
        skip_heartbeats=message_type != "heartbeat",
    )


async def read_all(ws: Any, sink: list, quiet: float = 0.5) -> None:
    """Reads until the connection closes or stays quiet for ``quiet`` seconds."""
    try:
        while True:
            sink.append(decode(await asyncio.wait_for(ws.recv(), quiet)))
    except (TimeoutError, websockets.ConnectionClosed):
        pass


def http_get(url: str, headers: dict | None = None) -> tuple:
    """(status, headers, body text) of a GET, error statuses included."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def room(densepose_server: Any) -> str:
    return "room_001"
