"""``Client``: an asyncio client of the WebSocket API that reconnects and resumes.

::

    async with Client(server.url, token) as client:
        await client.subscribe("pose_data", environment_id="room_001", max_fps=10)
        async for message in client:
            print(message["type"], message["data"])

Protocol errors become exceptions: a class for each of SUBSCRIPTION_ERROR,
RATE_LIMIT_EXCEEDED, PERMISSION_DENIED, RESUME_FAILED and CONNECTION_ERROR, and
:class:`ProtocolError` (with ``.code``) for the others. When the connection drops
without a clean close, the client reconnects with exponential backoff, sends ``resume``
with the last sequence it saw, and the server replays the alerts it missed.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlencode

import websockets
from websockets.typing import Subprotocol

from .errors import (
    ArgumentTypeError,
    ConnectionLost,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ResumeFailed,
    SubscriptionError,
    WaitTimeoutError,
)
from .messages import Message

SUBPROTOCOL = "wifi-densepose-v1"
_FILTER_KEYS = (
    "environment_id",
    "min_confidence",
    "include_keypoints",
    "include_dense_pose",
    "include_velocity",
    "severity",
    "event_types",
)
_THROTTLE_KEYS = ("max_fps", "buffer_size", "compression")


#: Close codes after which reconnecting (and resuming) can help: the server went away
#: (1001 shutdown, 1006 no close frame, 1011-1013 server trouble or slow consumer) or
#: closed a silent connection (4002). After the others it cannot: 1000 normal, 1008
#: flood, 1009 message too big, 4001 token expired (get a new token), 4003 the session
#: was resumed by another connection.
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 4002})

_ERRORS = {
    "SUBSCRIPTION_ERROR": SubscriptionError,
    "RATE_LIMIT_EXCEEDED": RateLimited,
    "PERMISSION_DENIED": PermissionDenied,
    "RESUME_FAILED": ResumeFailed,
    "CONNECTION_ERROR": ConnectionLost,
}


def error_from(data: dict) -> ProtocolError:
    cls = _ERRORS.get(data.get("error_code", ""), ProtocolError)
    return cls(data.get("error_code", "ERROR"), data.get("message", ""), data.get("details"))


def _stream_order(event_id: str) -> tuple[int, int]:
    """A broker event id (``"<ms>-<n>"``) as something that sorts like the stream."""
    ms, _, n = event_id.partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return (-1, -1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Client:
    """An asyncio client. See the module docstring."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        client_id: str | None = None,
        reconnect: bool = True,
        max_retries: int = 8,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        heartbeat_interval_s: float | None = 30.0,
        compression: str | None = None,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.token = token
        self.client_id = client_id
        self.reconnect = reconnect
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.compression = compression
        self.request_timeout_s = request_timeout_s
        #: The server's session id (from connection_status); used to resume.
        self.session_id: str | None = None
        #: The highest ``metadata.sequence`` received.
        self.last_sequence = 0
        #: With a server behind a broker: the last ``metadata.event_id`` received from each
        #: environment. Sent on resume, so any node can replay exactly what was missed.
        self.last_event_ids: dict[str, str] = {}
        #: Reconnections so far.
        self.reconnects = 0
        #: The close code of the last connection that ended (see RECONNECT_CODES).
        self.close_code: int | None = None
        self._ws: Any = None
        self._events: asyncio.Queue = asyncio.Queue()
        self._pending: asyncio.Future | None = None
        self._request_lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None
        self._closing = False
        self._subscriptions: dict[str, dict] = {}
        self._connected = asyncio.Event()

    # -- connection -------------------------------------------------------------------
    def _connect_url(self) -> str:
        params = {"token": self.token}
        if self.client_id:
            params["client_id"] = self.client_id
        if self.compression:
            params["compression"] = self.compression
        return f"{self.url}?{urlencode(params)}"

    async def connect(self) -> Self:
        await self._open(resume=False)
        if self.heartbeat_interval_s:
            self._heartbeat = asyncio.create_task(self._heartbeat_loop())
        return self

    async def _open(self, resume: bool) -> None:
        self._ws = await websockets.connect(
            self._connect_url(), subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=None
        )
        first = self._decode(await self._ws.recv())
        self._track(first)
        old_session = self.session_id
        if first.get("type") == "connection_status":
            self.session_id = first["data"].get("session_id")
        self._reader = asyncio.create_task(self._read_loop())
        self._connected.set()
        if resume and old_session:
            try:
                data: dict[str, Any] = {"session_id": old_session,
                                        "last_sequence": self.last_sequence}
                if self.last_event_ids:
                    data["last_event_ids"] = dict(self.last_event_ids)
                ack = await self._request("resume", data)
                self.session_id = ack.get("session_id", old_session)
            except ResumeFailed:
                # The server forgot us: subscribe again to what we had.
                specs = list(self._subscriptions.values())
                self._subscriptions.clear()
                if specs:
                    await self._subscribe_specs(specs)

    async def close(self) -> None:
        """Sends ``disconnect`` and closes; the session ends (no resume)."""
        self._closing = True
        for task in (self._heartbeat,):
            if task:
                task.cancel()
        if self._ws is not None:
            try:
                await self._ws.send(
                    json.dumps({"type": "disconnect", "timestamp": _now(), "data": {}})
                )
                await asyncio.wait_for(self._ws.close(), 2)
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass  # closing a socket that is already broken: nothing left to tell
        if self._reader:
            self._reader.cancel()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests ---------------------------------------------------------------------
    async def _send(self, message_type: str, data: dict) -> None:
        await self._ws.send(json.dumps({"type": message_type, "timestamp": _now(), "data": data}))

    async def _request(self, message_type: str, data: dict) -> dict:
        """Sends a message and waits for its ack (or raises its error)."""
        async with self._request_lock:
            fut = asyncio.get_running_loop().create_future()
            self._pending = fut
            try:
                await self._send(message_type, data)
                return await asyncio.wait_for(fut, self.request_timeout_s)
            except TimeoutError:
                raise WaitTimeoutError(
                    f"no answer to {message_type} within {self.request_timeout_s}s"
                ) from None
            finally:
                self._pending = None

    async def subscribe(
        self, event_type: str, *, quality: str | None = None, **options: Any
    ) -> str:
        """Subscribes to one event type; returns its subscription id.

        Keyword options are the spec's filters (environment_id, min_confidence,
        include_keypoints, include_dense_pose, include_velocity, severity, event_types) and
        throttle settings (max_fps, buffer_size, compression).
        """
        spec: dict[str, Any] = {"event_type": event_type}
        filters = {k: v for k, v in options.items() if k in _FILTER_KEYS and v is not None}
        throttle = {k: v for k, v in options.items() if k in _THROTTLE_KEYS and v is not None}
        unknown = set(options) - set(_FILTER_KEYS) - set(_THROTTLE_KEYS)
        if unknown:
            raise ArgumentTypeError(f"unknown subscription option(s): {', '.join(sorted(unknown))}")
        if filters:
            spec["filters"] = filters
        if throttle:
            spec["throttle"] = throttle
        if quality:
            spec["quality"] = quality
        ids = await self._subscribe_specs([spec])
        return ids[0]

    async def _subscribe_specs(self, specs: list) -> list:
        ack = await self._request("subscribe", {"subscriptions": specs})
        ids = [s["subscription_id"] for s in ack["active_subscriptions"]]
        for sid, spec in zip(ids, specs):
            self._subscriptions[sid] = spec
        return ids

    async def unsubscribe(self, *subscription_ids: str) -> dict:
        ack = await self._request("unsubscribe", {"subscription_ids": list(subscription_ids)})
        for sid in subscription_ids:
            self._subscriptions.pop(sid, None)
        return ack

    async def update_subscription(self, subscription_id: str, **changes: Any) -> dict:
        filters = {k: v for k, v in changes.items() if k in _FILTER_KEYS}
        throttle = {k: v for k, v in changes.items() if k in _THROTTLE_KEYS}
        data: dict[str, Any] = {"subscription_id": subscription_id}
        if filters:
            data["filters"] = filters
        if throttle:
            data["throttle"] = throttle
        return await self._request("update_subscription", data)

    async def status(self) -> dict:
        """The server's connection_status for this connection."""
        return await self._request("connection_status", {})

    # -- receiving --------------------------------------------------------------------
    @staticmethod
    def _decode(raw: Any) -> dict:
        if isinstance(raw, bytes):
            import gzip
            import zlib

            raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else zlib.decompress(raw)
        return json.loads(raw)

    def _track(self, msg: dict) -> None:
        meta = msg.get("metadata", {})
        seq = meta.get("sequence")
        if isinstance(seq, int) and seq > self.last_sequence:
            self.last_sequence = seq
        event_id = meta.get("event_id")
        if isinstance(event_id, str):
            env = (msg.get("data") or {}).get("environment_id")
            if isinstance(env, str):
                old = self.last_event_ids.get(env)
                if old is None or _stream_order(event_id) > _stream_order(old):
                    self.last_event_ids[env] = event_id

    async def _read_loop(self) -> None:
        ws = self._ws
        try:
            async for raw in ws:
                msg = self._decode(raw)
                self._track(msg)
                kind = msg.get("type")
                pending = self._pending
                if kind in ("ack", "connection_status") and pending and not pending.done():
                    pending.set_result(msg["data"])
                elif kind == "error" and pending and not pending.done():
                    pending.set_exception(error_from(msg["data"]))
                elif kind == "heartbeat":
                    continue
                else:
                    self._events.put_nowait(msg)
        except websockets.ConnectionClosed:
            pass
        code = ws.close_code if ws.close_code is not None else 1006
        self.close_code = code
        self._connected.clear()
        if not self._closing and self.reconnect and code in RECONNECT_CODES:
            asyncio.create_task(self._reconnect())
        else:
            self._events.put_nowait(None)

    async def _reconnect(self) -> None:
        delay = self.backoff_s
        for _ in range(self.max_retries):
            await asyncio.sleep(delay * (0.5 + random.random()))
            try:
                await self._open(resume=True)
                self.reconnects += 1
                return
            except (TimeoutError, OSError, websockets.WebSocketException):
                delay = min(delay * 2, self.max_backoff_s)
        self._events.put_nowait(None)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)  # type: ignore[arg-type]
            if self._connected.is_set():
                try:
                    await self._send("heartbeat", {"client_id": self.client_id})
                except websockets.ConnectionClosed:
                    pass

    async def recv(self, timeout: float | None = None) -> dict:
        """The next event message (pose_data, activity_event, disconnect, error...)."""
        try:
            msg = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            raise WaitTimeoutError(f"no event within {timeout}s") from None
        if msg is None:
            self._events.put_nowait(None)
            raise ConnectionLost("CONNECTION_ERROR", "connection closed", {})
        return msg

    async def recv_message(self, timeout: float | None = None) -> Message:
        """The next event message as a typed :class:`~wifi_densepose.messages.Message`."""
        return Message.from_dict(await self.recv(timeout))

    def __aiter__(self) -> AsyncIterator[dict]:
        return self

    async def __anext__(self) -> dict:
        try:
            return await self.recv()
        except ConnectionLost:
            raise StopAsyncIteration from None


class SyncClient:
    """A blocking :class:`Client` for scripts and notebooks without asyncio::

        with SyncClient(server.url, token) as client:
            client.subscribe("activity_event")
            for message in client:
                ...

    It runs a :class:`Client` (reconnect, resume, exceptions and all) on an event loop of
    its own in a background thread; each method blocks until the answer arrives.
    """

    def __init__(self, url: str, token: str, **options: Any) -> None:
        import threading

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wdp-client",
                                        daemon=True)
        self._thread.start()

        async def make() -> Client:
            return Client(url, token, **options)

        self._client = self._run(make())

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def client(self) -> Client:
        """The asyncio client underneath (session_id, last_sequence, reconnects...)."""
        return self._client

    def connect(self) -> Self:
        self._run(self._client.connect())
        return self

    def close(self) -> None:
        try:
            self._run(self._client.close(), timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, event_type: str, **options: Any) -> str:
        return self._run(self._client.subscribe(event_type, **options))

    def unsubscribe(self, *subscription_ids: str) -> dict:
        return self._run(self._client.unsubscribe(*subscription_ids))

    def update_subscription(self, subscription_id: str, **changes: Any) -> dict:
        return self._run(self._client.update_subscription(subscription_id, **changes))

    def status(self) -> dict:
        return self._run(self._client.status())

    def recv(self, timeout: float | None = None) -> dict:
        """The next event message; TimeoutError after ``timeout`` seconds."""
        return self._run(self._client.recv(timeout=timeout))

    def recv_message(self, timeout: float | None = None) -> Message:
        """The next event message as a typed :class:`~wifi_densepose.messages.Message`."""
        return Message.from_dict(self.recv(timeout))

    def __iter__(self) -> SyncClient:
        return self

    def __next__(self) -> dict:
        try:
            return self.recv()
        except ConnectionLost:
            raise StopIteration from None
