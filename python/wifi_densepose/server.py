"""``Server``: the WebSocket API server and its event bus, with Python callbacks."""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import json
import logging
import math
import os
import secrets
import threading
import tomllib
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from . import _native
from .errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgumentError,
    PathNotFoundError,
    ServerError,
)
from .model import Model
from .sim import _seed_arg

log = logging.getLogger("wifi_densepose.server")

#: Every event type the server publishes (defined once, in the engine). ``analytics_update``
#: is accepted as an alias of ``analytics_stream`` (see docs/protocol.md).
EVENT_TYPES: tuple[str, ...] = _native.EVENT_TYPES

Callback = Callable[[dict], Any]


def _event_type(name: str) -> str:
    if name == "analytics_update":
        return "analytics_stream"
    if name not in EVENT_TYPES:
        raise InvalidArgumentError(f"unknown event type {name!r} (one of: {', '.join(EVENT_TYPES)})")
    return name


def _load_config(config: None | Mapping[str, Any] | str | os.PathLike) -> dict[str, Any] | None:
    if config is None:
        return None
    if isinstance(config, (str, os.PathLike)):
        try:
            with open(config, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError as e:
            raise PathNotFoundError(f"config: no such file {os.fspath(config)!r}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{os.fspath(config)}: not valid TOML: {e}") from e
        config = doc.get("server", doc)
    if not isinstance(config, Mapping):
        raise ArgumentTypeError(f"config must be a dict or a TOML path, not {type(config).__name__}")
    return dict(config)


_DEFAULT_MODEL: list[Model] = []
_DEFAULT_MODEL_LOCK = threading.Lock()


def _default_model() -> Model:
    # Loaded once per process and shared by every server (the engine serializes calls).
    # A list and a lock rather than functools.lru_cache, whose wrapper has no signature a
    # stub checker can compare.
    with _DEFAULT_MODEL_LOCK:
        if not _DEFAULT_MODEL:
            _DEFAULT_MODEL.append(Model.default())
        return _DEFAULT_MODEL[0]


def _resolve_model(model: Model | str | os.PathLike | None) -> Model | None:
    if model is None or isinstance(model, Model):
        return model
    if isinstance(model, str) and model == "default":
        return _default_model()
    if isinstance(model, (str, os.PathLike)):
        return Model.load(model)
    raise ArgumentTypeError(
        f"model must be 'default', a path, a wifi_densepose.Model or None, not {type(model).__name__}"
    )


_RUNNING: weakref.WeakSet[Server] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # Stop before the interpreter finalizes: the callback thread must be out of Python.
    for server in list(_RUNNING):
        server.stop()


@dataclass
class _Registered:
    fn: Callback
    loop: asyncio.AbstractEventLoop | None


class Server:
    """A running WebSocket API server (``/ws/v1``, ``/health``, ``/metrics``).

    ``port=0`` picks a free port; ``jwt_secret=None`` makes a random HS256 secret for this
    process (tokens then come from :meth:`issue_token`). For RS256/ES256 pass
    ``jwt_algorithm`` and ``jwt_public_key`` (PEM); such a server verifies but cannot issue.
    ``config`` overrides limits (a dict, or a TOML file whose ``[server]`` table is used).
    ``config={"broker": {"url": "redis://host:6379", "node_id": "node-a"}}`` makes this one
    of several nodes sharing a Redis broker (docs/deployment.md): a client of any node
    receives every node's events and can resume on any node.

    ``model`` is the pose model every environment infers with: ``"default"`` (the model
    bundled in the wheel), a path to your own ONNX model, a loaded :class:`Model`, or
    ``None`` for no inference (environments then report their sources only, unless a
    simulation runs in oracle mode). Each environment gets one window inferred
    ``inference_rate_hz`` times a second of its source's clock; windows of environments
    due together run as one batch.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        jwt_secret: str | None = None,
        config: None | Mapping[str, Any] | str | os.PathLike = None,
        *,
        jwt_public_key: str | None = None,
        jwt_algorithm: str = "HS256",
        model: Model | str | os.PathLike | None = "default",
        inference_rate_hz: float = 30.0,
    ) -> None:
        if isinstance(port, bool) or not hasattr(port, "__index__") or not 0 <= port <= 65535:
            raise InvalidArgumentError(f"port must be an integer from 0 (any free port) to 65535, not {port!r}")
        self._native = _native.Server(
            host, port, jwt_secret, jwt_public_key, jwt_algorithm, _load_config(config)
        )
        self._model_spec = model
        self._inference_rate_hz = float(inference_rate_hz)
        self._model: Model | None = None
        self._callbacks: dict[str, list[_Registered]] = {}
        self._lock = threading.Lock()
        #: Exceptions raised by callbacks so far (each is also logged).
        self.callback_errors = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Self:
        model = _resolve_model(self._model_spec)  # a bad model fails before we listen
        self._native.start()
        _RUNNING.add(self)
        self._install_dispatcher()
        self.set_model(model, self._inference_rate_hz)
        return self

    # -- the model ---------------------------------------------------------------------
    @property
    def model(self) -> Model | None:
        """The pose model in use (``None``: no inference)."""
        return self._model

    def set_model(
        self, model: Model | str | os.PathLike | None, inference_rate_hz: float | None = None
    ) -> None:
        """Switches the model every environment infers with, from the next window (same
        values as the constructor's ``model``)."""
        resolved = _resolve_model(model)
        rate = self._inference_rate_hz if inference_rate_hz is None else float(inference_rate_hz)
        self._native.set_model(None if resolved is None else resolved._native, rate)
        self._model, self._inference_rate_hz = resolved, rate

    def model_info(self) -> dict | None:
        """The model in use (version, source, rate) and its worker's counters: windows,
        calls, mean and largest batch, failures, time busy."""
        info = self._native.model_info()
        return info or None

    def stop(self) -> None:
        """Stops serving; clients get ``disconnect`` (server_shutdown). Never hangs: a
        callback still running is given two seconds to return."""
        self._native.stop()
        _RUNNING.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._native.running

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/ws/v1``"""
        return self._native.url

    @property
    def port(self) -> int:
        return self._native.port

    @property
    def http_url(self) -> str:
        return f"http://{self._native.host}:{self.port}"

    # -- tokens and environments ------------------------------------------------------
    def issue_token(
        self,
        subject: str | None = None,
        environments: Sequence[str] | None = None,
        ttl_s: int = 3600,
    ) -> str:
        """An HS256 token for ``subject``; ``environments=None`` grants all of them.

        Without a subject each token gets a unique one (``user-<random>``): sessions are
        resumed only by a token of the same subject, so a shared default would let any
        token resume any other's session."""
        if subject is None:
            subject = f"user-{secrets.token_hex(8)}"
        if not 0 < int(ttl_s) <= 100 * 365 * 86400:
            raise InvalidArgumentError(f"ttl_s must be from 1 second to 100 years, not {ttl_s}")
        if isinstance(environments, (str, bytes)):
            # list("room_001") would grant "r", "o", "m"... rather than the room.
            raise ArgumentTypeError(
                f"environments must be a list of environment ids, not the string {environments!r}"
                f" (did you mean [{environments!r}]?)")
        return self._native.issue_token(
            subject, list(environments) if environments is not None else None, int(ttl_s)
        )

    def add_environment(
        self,
        environment_id: str,
        device: str | None = None,
        room: tuple[float, float] | None = None,
        placement: Mapping[str, Any] | None = None,
        source_placements: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Starts an environment (one task in the engine) that sources can feed and
        clients can subscribe to. Idempotent. ``room`` is the floor's (width, depth) in
        metres, which scales the model's normalized coordinates (default 6 x 5; a
        simulated source sets its own room's). ``placement`` (with ``device``) says where
        the transmitter and receiver are, as :func:`wifi_densepose.analyze` takes it: the
        localizer then places a moving person from the link itself (``docs/sensing.md``,
        "Position"); a simulated source brings its own. ``source_placements`` maps source
        ids to placements for a room heard by several receivers (``inject:NAME`` from
        :meth:`inject_csi` with ``receiver=NAME``, ``replay:PATH``, ...): the maps of the
        links that can place people are fused, which holds the far tail of the error
        down (three links, held out: 0.32 / 0.84 m median / p90 against 0.40 / 2.63 m for
        one), at most 16 of them. The sources need not share a clock: the environment maps
        each one's timestamps onto its own time base (``docs/sensing.md``, "Several
        clocks"), and the maps are fused at most 0.5 s apart on it.

        ``environment_id`` is at most 256 bytes without control characters, and a server
        runs at most 4096 environments; past either, ``InvalidArgumentError``."""
        self._native.add_environment(environment_id, device)
        if room is not None:
            width, depth = room
            self._native.set_room(environment_id, float(width), float(depth))
        if placement is None and not source_placements:
            return
        from .analyze import _placement, _source_placements

        width, depth = room if room is not None else (6.0, 5.0)
        links = _source_placements(source_placements or {})
        if placement is not None:
            self._native.set_placement(environment_id, device, _placement(placement),
                                       (float(width), float(depth)))
        for source, where in links.items():
            self._native.set_placement(environment_id, device, where,
                                       (float(width), float(depth)), source)

    def inject_csi(
        self,
        environment_id: str,
        csi: Any,
        timestamps: Sequence[float] | None = None,
        receiver: str | None = None,
    ) -> int:
        """Feeds complex64 CSI ``(n_tx, n_rx, n_sub)`` or a batch ``(n, n_tx, n_rx, n_sub)``
        into an environment; returns the number of frames. Waits (never drops) while the
        environment's queue is full. ``timestamps`` (seconds) default to now for one
        frame; a batch without them is taken as consecutive packets 10 ms apart (100 Hz,
        the model's rate) ending now. ``receiver`` names the receiver when one room is
        heard by several: each is its own source (``inject:NAME``), with its own sensor
        and, given its placement in :meth:`add_environment`'s ``source_placements``, its
        own link in the fused localizer."""
        stamps = None
        if timestamps is not None:
            stamps = [float(t) for t in timestamps]
            if not all(math.isfinite(t) for t in stamps):
                # analyze refuses them too; here they reached the sensor's clock.
                raise InvalidArgumentError("timestamps must be finite seconds")
        return self._native.inject_csi(environment_id, csi, stamps, receiver)

    def replay(
        self,
        environment_id: str,
        path: str | os.PathLike,
        speed: float = 1.0,
        format: str | None = None,
    ) -> _native.Replay:
        """Replays a recording into an environment at ``speed`` × real time (0: as fast
        as the environment takes it). Returns a handle with ``progress``, ``done``,
        ``wait(timeout)``, ``stop()`` and ``file_errors``."""
        return self._native.replay(environment_id, os.fspath(path), float(speed), format)

    def simulate(
        self,
        environment_id: str,
        scenario: str | Mapping[str, Any] = "walk",
        seed: int = 0,
        duration_s: float | None = None,
        device: str | None = None,
        speed: float = 1.0,
        repeat: bool = False,
        oracle: bool = False,
    ) -> _native.Replay:
        """Runs a simulator scenario (``wifi_densepose.sim.scenarios()``, or a full
        description as a dict) as a live source of an environment, at ``speed`` × real
        time; ``repeat`` runs it again with the next seed each time it ends. Returns the
        same progress handle as :meth:`replay`.

        ``oracle=True`` feeds the environment's tracking and analytics with detections made
        from the simulator's ground truth (with realistic misses, ghosts and noise) instead
        of a model's: pose_data, tracking_update, activity_event (falls), occupancy_update
        and analytics_stream flow, and every pose_data says
        ``model_version: "oracle:simulator-truth"``. For exercising everything downstream
        of the model; it is not pose estimation from CSI."""
        text = scenario if isinstance(scenario, str) else json.dumps(dict(scenario))
        return self._native.simulate(
            environment_id, text, _seed_arg(seed), duration_s, device, float(speed), bool(repeat),
            bool(oracle),
        )

    def listen_udp(
        self,
        nodes: Mapping[int, str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        macs: Mapping[str, str] | None = None,
        senders: Mapping[str, str] | None = None,
    ) -> _native.UdpListener:
        """Receives CSI from ESP32 nodes over UDP on ``host:port`` (0: any free port). One
        socket takes our WDPC frame (docs/udp-frame.md), RuView's raw CSI frame and
        datagrams of ``CSI_DATA`` text lines (docs/esp32-live.md). ``nodes`` maps WDPC and
        RuView node ids to environments; ``CSI_DATA`` lines go by ``senders`` (``"ip"`` or
        ``"ip:port"`` to environment) first, then by their MAC field (``macs``). The
        listener's ``port`` and ``stats()`` count datagrams, frames, bad datagrams and
        lines, unknown nodes, skipped non-CSI lines and packets, and drops."""
        return self._native.listen_udp(
            {int(k): v for k, v in (nodes or {}).items()}, int(port), host,
            dict(macs) if macs else None, dict(senders) if senders else None,
        )

    def listen_serial(
        self, port: str | os.PathLike[str], baud: int, environment_id: str, *,
        mac: str | None = None,
    ) -> _native.SerialListener:
        """Reads the ``CSI_DATA`` lines an ESP32 running ESP32-CSI-Tool or esp-csi prints on
        its serial ``port`` (e.g. ``/dev/ttyUSB0``) at ``baud`` (921600 for esp-csi, what
        the firmware was built with for ESP32-CSI-Tool) into ``environment_id``, as
        source ``serial:<port>`` (docs/esp32-live.md). ``mac`` keeps one transmitter's
        lines only. Other lines (boot logs) are skipped and counted, bad lines counted
        and reported; a port that goes away is reopened every second. ``stop()`` closes
        it. Raises FileNotFoundError for a port that does not exist, ConfigError for a
        baud rate or MAC it cannot use, ServerError when the port cannot be opened."""
        return self._native.listen_serial(os.fspath(port), int(baud), environment_id, mac)

    def configure(self, settings: Mapping[str, Any], applied_by: str = "python") -> dict:
        """Changes settings while the server runs, for every environment, all or none:
        ``analytics.enable_fall_detection`` (bool), ``detection.confidence_threshold``
        (0 to 1) and ``detection.max_persons`` (1 to 16: the most confident detections a
        window tracked while the sensor says someone is present; default 1,
        ``docs/sensing.md``). Publishes a ``config_update`` with what changed; returns it."""
        return self._native.configure(dict(settings), applied_by)

    def calibrate(
        self, environment_id: str, seconds: float = 30.0, *, timeout_s: float | None = None
    ) -> dict:
        """Learns the empty room of ``environment_id`` over its next ``seconds`` of CSI
        (keep the room empty meanwhile) and returns the calibration: the motion and
        presence thresholds the sensor now uses, and the empty room's static channel
        (``background``, one amplitude per chain, antenna and subcarrier, and its
        ``static_threshold``) against which a still person shows (``docs/sensing.md``).
        It holds for the card's session: calibrate again after the card restarts. Blocks until it
        ends; raises ``RuntimeError`` when motion was seen (the room was not empty) or no
        CSI arrived within ``timeout_s`` (default ``seconds`` + 30). The outcome is also
        published as a ``system_event`` (``calibration_complete`` / ``calibration_failed``).
        Save the returned dict and give it back with :meth:`set_calibration`."""
        timeout = float(seconds) + 30.0 if timeout_s is None else float(timeout_s)
        return self._native.calibrate(environment_id, float(seconds), timeout)

    def set_calibration(self, environment_id: str, calibration: Mapping[str, Any] | None) -> None:
        """Applies a calibration :meth:`calibrate` returned earlier (``None``: back to the
        uncalibrated thresholds). Refused when it was made for another CSI shape."""
        self._native.set_calibration(environment_id, None if calibration is None else dict(calibration))

    def environment_stats(self, environment_id: str) -> dict:
        """Frames, frame rate, shape, queue length and each source's health (frames,
        gaps, reordered, duplicates, stalls, and ``clock_offset_s`` /
        ``clock_realignments``: how its timestamps are put on the environment's time
        base); with ``source_placements``, ``placing`` names the links fused, the fixes
        made and how many links' maps the last one used."""
        return self._native.environment_stats(environment_id)

    @property
    def environments(self) -> list[str]:
        return self._native.environments()

    # -- events -----------------------------------------------------------------------
    def publish(
        self, event_type: str, data: Mapping[str, Any], environment_id: str | None = None
    ) -> None:
        """Puts an event on the bus exactly as the pipeline would."""
        if not isinstance(data, Mapping):
            raise ArgumentTypeError(f"data must be a dict, not {type(data).__name__}")
        self._native.publish(_event_type(event_type), dict(data), environment_id)

    def on(
        self,
        event_type: str,
        callback: Callback | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Any:
        """Calls ``callback(data)`` for every event of ``event_type``.

        ``data`` is the message's ``data`` as the wire carries it. A sync callback runs on
        the server's callback thread; an ``async def`` callback runs on ``loop`` (by
        default the loop running where ``on`` is called). A callback that raises is logged
        and counted in :attr:`callback_errors`; the server goes on. Usable as a decorator.
        """
        name = _event_type(event_type)
        if callback is None:
            return lambda fn: self.on(name, fn, loop=loop)
        if not callable(callback):
            raise ArgumentTypeError("callback must be callable")
        if inspect.iscoroutinefunction(callback) and loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ServerError(
                    "an async callback needs an event loop: register it from async code "
                    "or pass loop="
                ) from None
        with self._lock:
            self._callbacks.setdefault(name, []).append(_Registered(callback, loop))
        self._install_dispatcher()
        return callback

    def off(self, event_type: str, callback: Callback) -> None:
        name = _event_type(event_type)
        with self._lock:
            self._callbacks[name] = [r for r in self._callbacks.get(name, []) if r.fn != callback]
            if not self._callbacks[name]:
                del self._callbacks[name]
        self._install_dispatcher()

    def metrics(self) -> str:
        """The Prometheus text that ``/metrics`` serves."""
        return self._native.metrics_text()

    # -- several nodes (a broker; docs/deployment.md) ---------------------------------
    @property
    def node_id(self) -> str | None:
        """This node's id in the broker (``config={"broker": {"url": ...}}``), else None."""
        return self._native.node_id

    def broker_status(self) -> dict | None:
        """The ``broker`` part of ``/health``: connected, counters, leases; None without
        a broker."""
        return self._native.broker_status()

    def claim_environment(self, environment_id: str) -> bool:
        """Takes (or renews) the environment's lease in the broker; True when this node
        holds it. Held leases are renewed automatically; a dead node's leases expire after
        ``broker.lease_ttl_s`` and another node can claim them (takeover). Only the holder
        should run the environment's sources."""
        return self._native.claim_environment(environment_id)

    def release_environment(self, environment_id: str) -> None:
        """Gives the environment's lease back (stopping a node does it too)."""
        self._native.release_environment(environment_id)

    def lease_holder(self, environment_id: str) -> str | None:
        """The node id holding the environment's lease, if any."""
        return self._native.lease_holder(environment_id)

    def holds_lease(self, environment_id: str) -> bool:
        """Whether this node holds the lease, as of its last renewal (no broker call)."""
        return self._native.holds_lease(environment_id)

    def _install_dispatcher(self) -> None:
        if not self._native.running:
            return
        with self._lock:
            types = list(self._callbacks)
        self._native.set_dispatcher(types, self._dispatch)

    def _dispatch(self, event_type: str, data: dict) -> None:
        with self._lock:
            targets = list(self._callbacks.get(event_type, ()))
        if not targets:
            return
        for reg in targets:
            if reg.loop is not None:
                try:
                    fut = asyncio.run_coroutine_threadsafe(reg.fn(data), reg.loop)
                except RuntimeError:  # the loop is closed
                    self._callback_failed(reg.fn, None)
                    continue
                fut.add_done_callback(functools.partial(self._async_done, reg.fn))
                continue
            try:
                result = reg.fn(data)
                if inspect.isawaitable(result):
                    log.warning("callback %r returned an awaitable; use async def", reg.fn)
            # BaseException: a callback calling sys.exit() (SystemExit) or interrupted must
            # not end the callback thread (later callbacks never ran, and the process
            # crashed at exit); it is logged and counted like any other failure.
            except BaseException as e:  # noqa: BLE001 - a callback must never stop the server
                self._callback_failed(reg.fn, e)

    def _async_done(self, fn: Callback, fut: Any) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self._callback_failed(fn, fut.exception())

    def _callback_failed(self, fn: Callback, exc: BaseException | None) -> None:
        self.callback_errors += 1
        log.error("callback %r raised", fn, exc_info=exc)
