"""The pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``densepose_server``: a running :class:`~wifi_densepose.Server` on a free loopback port
  with environment ``room_001``; stopped after the test.
- ``densepose_token``: a token for it that grants every environment.

Helpers usable anywhere: :func:`wait_for` reads messages from a ``websockets`` connection
until one matches, with a timeout; :func:`collect` gathers events from callbacks.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .errors import WaitTimeoutError
from .server import Server

#: Limits short enough for tests (heartbeat timeouts in seconds, not minutes).
TEST_CONFIG = {"heartbeat_timeout_s": 30.0, "resume_ttl_s": 30.0}


@pytest.fixture
def densepose_server() -> Iterator[Server]:
    server = Server(config=TEST_CONFIG).start()
    server.add_environment("room_001")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def densepose_token(densepose_server: Server) -> str:
    return densepose_server.issue_token("pytest")


def decode(raw: Any) -> dict:
    """A message as a dict, whether it came as text or as a gzip/zlib binary frame."""
    if isinstance(raw, bytes):
        import gzip
        import zlib

        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else zlib.decompress(raw)
    return json.loads(raw)


async def wait_for(
    ws: Any,
    predicate: Callable[[dict], bool] = lambda m: True,
    timeout: float = 5.0,
    skip_heartbeats: bool = True,
) -> dict:
    """Reads messages from ``ws`` until one satisfies ``predicate``; raises WaitTimeoutError
    (a TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeoutError(f"no matching message within {timeout}s")
        try:
            msg = decode(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            raise WaitTimeoutError(f"no matching message within {timeout}s") from None
        if skip_heartbeats and msg.get("type") == "heartbeat":
            continue
        if predicate(msg):
            return msg


class collect:
    """Registers a callback that records ``data`` of ``event_type``; :meth:`wait` blocks
    until ``n`` have arrived (or raises WaitTimeoutError, a TimeoutError)."""

    def __init__(self, server: Server, event_type: str) -> None:
        self.items: list = []
        self._cond = threading.Condition()
        server.on(event_type, self._record)

    def _record(self, data: dict) -> None:
        with self._cond:
            self.items.append(data)
            self._cond.notify_all()

    def wait(self, n: int = 1, timeout: float = 5.0) -> list:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= n, timeout):
                raise WaitTimeoutError(f"{len(self.items)} of {n} events within {timeout}s")
            return list(self.items)

    def wait_for(self, predicate: Callable[[list], bool], timeout: float = 5.0) -> list:
        """Blocks until ``predicate(items)`` holds (e.g. a given event is among them):
        waiting for a count races when other events of the type can come first."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(list(self.items)), timeout):
                raise WaitTimeoutError(
                    f"the condition did not hold within {timeout}s; events: {self.items[-5:]}")
            return list(self.items)


def pytest_configure(config: pytest.Config | None) -> None:  # pragma: no cover - hook
    if config is not None:
        config.addinivalue_line("markers", "densepose: tests that run a WiFi-DensePose server")
