"""The ``wifi-densepose serve --config FILE`` TOML file, validated before anything starts.

::

    [server]                 # limits and ports (docs/protocol.md, "Configuration")
    port = 8000

    [server.broker]          # several nodes on one Redis (docs/deployment.md); optional
    url = "redis://10.0.0.5:6379"
    node_id = "node-a"       # with a broker, simulate/replay sources run on the node
                             # holding the environment's lease; others stand by

    [model]                  # the pose model every environment infers with (docs/model.md)
    path = "default"         # "default" (bundled), "none" (no inference) or an ONNX file
    rate_hz = 30.0           # windows per second of source clock, per environment
    threads = 1              # ONNX Runtime intra-op threads (0: its default)
    device = "cpu"           # "cpu", "cuda" or "cuda:N" (needs onnxruntime-gpu)

    [[environments]]
    id = "room_001"
    device = "intel5300"     # simulate: the simulated device profile; else a label
    source = "simulate"      # simulate | replay | udp | serial | none
    scenario = "walk"        # simulate: a scenario name (wifi-densepose simulate --list)
    seed = 0
    speed = 1.0              # simulate, replay: 1 = real time, 0 = flat out
    duration_s = 20.0        # simulate: one run's length (default: the scenario's)
    oracle = false           # simulate: tracking/analytics from the ground truth (labelled)

    [[environments]]
    id = "lab"
    source = "replay"
    path = "walk.dat"        # replay: a recording; format is detected unless given
    # format = "intel5300"
    room = [6.0, 4.0]        # replay, udp, serial, none: floor width and depth in metres, which
                             # scale the model's coordinates (a simulation brings its own)
    # device = "intel5300"   # with placement: where the devices are, metres in the room frame
    # placement = {tx_position = [0.3, 2.0, 1.2], rx_position = [5.7, 3.0, 1.2]}
    # calibration = "lab_empty.json"   # replay, udp, serial, none: a saved calibration of
                             # the empty room (wifi-densepose calibrate, Server.calibrate)

    [[environments]]
    id = "ward_3"
    source = "udp"
    node = 7                 # udp: the node id of WDPC or RuView frames feeding this room;
    # mac = "A4:CF:12:13:93:D5"   # udp: CSI_DATA lines whose mac field is this, and/or
    # sender = "10.0.0.21"        # udp: CSI_DATA lines sent from this address (or ip:port)

    [[environments]]
    id = "kitchen"
    source = "serial"        # CSI_DATA lines of ESP32-CSI-Tool / esp-csi on a serial port
    port = "/dev/ttyUSB0"    # serial: the port (docs/esp32-live.md)
    baud = 921600            # serial: what the firmware prints at (default 921600)
    # mac = "A4:CF:12:13:93:D5"   # serial: keep this transmitter's lines only

    [[environments]]         # one room heard by several receivers: path, port, node,
    id = "living_room"       # mac and sender take a list, one source each
    device = "intel5300"
    source = "replay"
    path = ["rx1.dat", "rx2.dat"]   # replayed together (give them one speed above 0)
    room = [6.0, 5.0]
    # Each source's own link, by source id (replay:FILE, udp:node_N, udp:mac_MAC,
    # udp:IP, serial:PORT): their maps are fused (docs/sensing.md, "Position"); the
    # sources' clocks need not agree ("Several clocks").
    [environments.source_placements]
    "replay:rx1.dat" = {tx_position = [0.3, 2.5, 1.2], rx_position = [5.7, 1.0, 1.2]}
    "replay:rx2.dat" = {tx_position = [0.3, 2.5, 1.2], rx_position = [5.7, 4.0, 1.2]}

    [udp]
    port = 5500              # where ESP32 nodes send (docs/udp-frame.md, docs/esp32-live.md)
    host = "0.0.0.0"         # default 127.0.0.1: this machine only

With no [[environments]], ``room_001`` runs the ``walk`` simulation. Secrets never live in the file: the HS256 secret comes from WIFI_DENSEPOSE_JWT_SECRET,
an RS256/ES256 public key from WIFI_DENSEPOSE_JWT_PUBLIC_KEY (a PEM file path) with
WIFI_DENSEPOSE_JWT_ALGORITHM. Every error names the file and the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, InvalidArgumentError

SOURCES = ("simulate", "replay", "udp", "serial", "none")
_ENV_KEYS = {
    "simulate": {"id", "device", "source", "scenario", "seed", "speed", "duration_s", "oracle"},
    "replay": {"id", "device", "source", "path", "format", "speed", "room", "placement",
               "source_placements", "calibration"},
    "udp": {"id", "device", "source", "node", "mac", "sender", "room", "placement",
            "source_placements", "calibration"},
    "serial": {"id", "device", "source", "port", "baud", "mac", "room", "placement",
               "source_placements", "calibration"},
    "none": {"id", "device", "source", "room", "placement", "calibration"},
}
#: The baud rate of a serial source when none is given (esp-csi's; ESP32-CSI-Tool's
#: builds use what was set in their menuconfig, often 921600 or 1000000 too).
DEFAULT_BAUD = 921600
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}")


def normalize_mac(mac: str) -> str | None:
    """``A4:CF:12:13:93:D5`` for any spelling of a MAC (``a4-cf-...``), else None."""
    mac = mac.strip()
    return mac.replace("-", ":").upper() if _MAC.fullmatch(mac) else None


def sender_address(text: str) -> str | None:
    """``text`` if it is an IP address or ``ip:port`` (the sender of UDP datagrams)."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return text if sep and port.isdigit() and int(port) < 65536 else None
_MODEL_KEYS = {"path", "rate_hz", "threads", "device"}


@dataclass
class Environment:
    id: str
    source: str = "simulate"
    device: str | None = None
    scenario: str = "walk"
    seed: int = 0
    speed: float = 1.0
    duration_s: float | None = None
    path: str | None = None
    format: str | None = None
    node: int | None = None
    #: udp: CSI_DATA lines by their mac field; serial: keep that transmitter's lines only.
    mac: str | None = None
    #: udp: CSI_DATA lines sent from this address ("ip" or "ip:port").
    sender: str | None = None
    #: serial: the port (e.g. /dev/ttyUSB0) and its baud rate.
    port: str | None = None
    baud: int = DEFAULT_BAUD
    oracle: bool = False
    #: Floor (width, depth) in metres; a simulated source brings its own room's.
    room: tuple[float, float] | None = None
    placement: dict[str, Any] | None = None
    #: Several receivers of one room (``path``, ``port``, ``node``, ``mac`` and ``sender``
    #: may each be a list): every one, in order; the singular fields above hold the first.
    paths: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    #: Each source's own link, by source id (``Server.add_environment``'s argument).
    source_placements: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A saved calibration of the empty room (``calibration = "FILE"``), applied at start.
    calibration: dict[str, Any] | None = None

    def source_ids(self) -> list[str]:
        """The source ids this environment's frames will carry, as hardware_events and
        ``source_placements`` name them (``docs/protocol.md``, "Sources and their events")."""
        if self.source == "replay":
            return [f"replay:{os.path.basename(p)}" for p in self.paths]
        if self.source == "serial":
            return [f"serial:{p}" for p in self.ports]
        if self.source == "udp":
            return ([f"udp:node_{n}" for n in self.nodes] + [f"udp:mac_{m}" for m in self.macs]
                    + [f"udp:{a}" for a in self.senders])
        return []


@dataclass
class ModelConfig:
    """``[model]``: ``path`` is ``"default"`` (the bundled model), ``"none"`` (no
    inference) or an ONNX file; ``rate_hz`` windows per second per environment;
    ``threads`` for ONNX Runtime (0: its default); ``device`` ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"`` (the GPU build of ONNX Runtime, ``onnxruntime-gpu``)."""

    path: str = "default"
    rate_hz: float = 30.0
    threads: int = 1
    device: str = "cpu"


@dataclass
class ServeConfig:
    server: dict[str, Any] = field(default_factory=dict)
    environments: list[Environment] = field(default_factory=list)
    udp_port: int | None = None
    udp_host: str = "127.0.0.1"
    jwt: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)


def _type(where: str, value: Any, kind: type | tuple, name: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: must be {name}, not a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: must be {name}, not {type(value).__name__} {value!r}")
    return value


def _one_or_many(where: str, value: Any, kind: type | tuple, name: str) -> list[Any]:
    """A setting given once or as a list (several receivers of one room), as a list."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{where}: an empty list (give one {name}, or several)")
    return [_type(where, v, kind, f"{name} or a list of them") for v in values]


def load(path: str | os.PathLike) -> ServeConfig:
    """Reads and validates a serve configuration file."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{name}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: not valid TOML: {e}") from e
    return parse(doc, name)


def parse(doc: dict[str, Any], name: str = "config") -> ServeConfig:
    unknown = set(doc) - {"server", "environments", "udp", "model"}
    if unknown:
        raise ConfigError(f"{name}: unknown key {min(unknown)!r} "
                          "(allowed: server, environments, udp, model)")
    cfg = ServeConfig()
    cfg.server = dict(_type(f"{name}: server", doc.get("server", {}), dict, "a table"))
    envs = _type(f"{name}: environments", doc.get("environments", []), list,
                 "an array of tables ([[environments]])")
    seen: set[str] = set()
    for i, raw in enumerate(envs):
        where = f"{name}: environments[{i}]"
        _type(where, raw, dict, "a table")
        env_id = _type(f"{where}.id", raw.get("id"), str, "a string (the environment id)")
        if not env_id or env_id in seen:
            raise ConfigError(f"{where}.id: {env_id!r} is empty or used twice")
        seen.add(env_id)
        source = raw.get("source", "simulate")
        if source not in SOURCES:
            raise ConfigError(f"{where}.source: {source!r} is not one of {', '.join(SOURCES)}")
        extra = set(raw) - _ENV_KEYS[source]
        if extra:
            key = min(extra)
            raise ConfigError(f"{where}.{key}: not a setting of source {source!r} "
                              f"(allowed: {', '.join(sorted(_ENV_KEYS[source]))})")
        env = Environment(id=env_id, source=source)
        if "device" in raw:
            env.device = _type(f"{where}.device", raw["device"], str, "a string")
        if "scenario" in raw:
            env.scenario = _type(f"{where}.scenario", raw["scenario"], str, "a string")
        if "seed" in raw:
            env.seed = _type(f"{where}.seed", raw["seed"], int, "an integer")
        if "speed" in raw:
            env.speed = float(_type(f"{where}.speed", raw["speed"], (int, float), "a number"))
            if env.speed < 0:
                raise ConfigError(f"{where}.speed: must be >= 0 (0: as fast as possible)")
        if "oracle" in raw:
            env.oracle = _type(f"{where}.oracle", raw["oracle"], bool, "true or false")
        if "duration_s" in raw:
            env.duration_s = float(_type(f"{where}.duration_s", raw["duration_s"], (int, float),
                                         "a number"))
        if "room" in raw:
            room = _type(f"{where}.room", raw["room"], list, "[width, depth] in metres")
            if len(room) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in room
            ):
                raise ConfigError(f"{where}.room: must be [width, depth], two positive numbers "
                                  f"of metres, not {room!r}")
            env.room = (float(room[0]), float(room[1]))
        if "placement" in raw:
            from .analyze import _placement

            table = _type(f"{where}.placement", raw["placement"], dict,
                          "a table: tx_position, rx_position, [tx_axis, rx_axis, ...]")
            if "device" not in raw:
                raise ConfigError(f"{where}.placement: needs the environment's device "
                                  "(its antennas and subcarriers)")
            try:
                env.placement = _placement(table)
            except InvalidArgumentError as e:
                raise ConfigError(f"{where}.placement: {e}") from None
        if "calibration" in raw:
            env.calibration = _calibration_file(
                f"{where}.calibration",
                _type(f"{where}.calibration", raw["calibration"], str, "a path to a JSON file"))
        if source == "replay":
            env.paths = _one_or_many(f"{where}.path", raw.get("path"), str,
                                     "a path to a recording")
            for path in env.paths:
                if not os.path.isfile(path):
                    raise ConfigError(f"{where}.path: no such file {path!r}")
            env.path = env.paths[0]
            if "format" in raw:
                env.format = _type(f"{where}.format", raw["format"], str, "a string")
        if "mac" in raw:
            for mac in _one_or_many(f"{where}.mac", raw["mac"], str, "a MAC address string"):
                normal = normalize_mac(mac)
                if normal is None:
                    raise ConfigError(f"{where}.mac: {mac!r} is not a MAC address "
                                      "(six hex octets, e.g. A4:CF:12:13:93:D5)")
                env.macs.append(normal)
            if source == "serial" and len(env.macs) > 1:
                raise ConfigError(f"{where}.mac: a serial source keeps one transmitter's lines")
            env.mac = env.macs[0]
        if source == "udp":
            if "node" in raw:
                env.nodes = _one_or_many(f"{where}.node", raw["node"], int, "an integer node id")
                for node in env.nodes:
                    if not 0 <= node <= 65535:
                        raise ConfigError(f"{where}.node: {node} is not a 16-bit node id")
                env.node = env.nodes[0]
            if "sender" in raw:
                for sender in _one_or_many(f"{where}.sender", raw["sender"], str,
                                           "an address string"):
                    address = sender_address(sender)
                    if address is None:
                        raise ConfigError(f"{where}.sender: {sender!r} is not an IP address or "
                                          "ip:port")
                    env.senders.append(address)
                env.sender = env.senders[0]
            if env.node is None and env.mac is None and env.sender is None:
                raise ConfigError(f"{where}.node: a udp source needs node (WDPC or RuView "
                                  "node id), mac or sender (CSI_DATA lines)")
        if source == "serial":
            env.ports = _one_or_many(f"{where}.port", raw.get("port"), str,
                                     "the serial port's path (e.g. /dev/ttyUSB0)")
            env.port = env.ports[0]
            if "baud" in raw:
                env.baud = _type(f"{where}.baud", raw["baud"], int, "an integer baud rate")
                if env.baud <= 0:
                    raise ConfigError(f"{where}.baud: must be positive, not {env.baud}")
        ids = env.source_ids()
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ConfigError(f"{where}: two sources would both be {twice[0]!r} (a replayed "
                              "file is named by its file name)")
        if "source_placements" in raw:
            env.source_placements = _source_placements(f"{where}.source_placements",
                                                       raw["source_placements"], raw, ids)
        cfg.environments.append(env)
    udp = _type(f"{name}: udp", doc.get("udp", {}), dict, "a table")
    extra = set(udp) - {"port", "host"}
    if extra:
        raise ConfigError(f"{name}: udp.{min(extra)}: unknown key (allowed: host, port)")
    if "port" in udp:
        cfg.udp_port = _type(f"{name}: udp.port", udp["port"], int, "an integer")
    if "host" in udp:
        cfg.udp_host = _type(f"{name}: udp.host", udp["host"], str, "a string")
    ports = [p for e in cfg.environments if e.source == "serial" for p in e.ports]
    if len(set(ports)) < len(ports):
        raise ConfigError(f"{name}: environments: a serial port is named twice")
    for kind in ("nodes", "macs", "senders"):
        keys = [k for e in cfg.environments if e.source == "udp" for k in getattr(e, kind)]
        if len(set(keys)) < len(keys):
            twice = min(k for k in keys if keys.count(k) > 1)
            raise ConfigError(f"{name}: environments: udp {kind[:-1]} {twice!r} is routed to "
                              "two environments (or named twice)")
    if any(e.source == "udp" for e in cfg.environments) and cfg.udp_port is None:
        raise ConfigError(f"{name}: udp.port: required when an environment's source is 'udp'")
    cfg.model = _model(doc.get("model", {}), name)
    cfg.jwt = jwt_from_environment()
    return cfg


def _source_placements(where: str, value: Any, raw: dict[str, Any],
                       ids: list[str]) -> dict[str, dict[str, Any]]:
    """``source_placements``: a table of source id to placement, checked as
    ``Server.add_environment`` checks its argument, the ids among the environment's own."""
    from .analyze import _source_placements as check
    from .errors import ArgumentTypeError

    table = _type(where, value, dict, 'a table of source id to placement (e.g. '
                  '"udp:node_1" = {tx_position = [...], rx_position = [...]})')
    if "device" not in raw:
        raise ConfigError(f"{where}: needs the environment's device (its antennas and "
                          "subcarriers)")
    try:
        return check(table, ids)
    except (ArgumentTypeError, InvalidArgumentError) as e:
        text = str(e)
        rest = text.removeprefix("source_placements")
        raise ConfigError(f"{where}{rest}" if rest != text else f"{where}: {text}") from None


def _model(raw: Any, name: str) -> ModelConfig:
    table = _type(f"{name}: model", raw, dict, "a table")
    extra = set(table) - _MODEL_KEYS
    if extra:
        raise ConfigError(f"{name}: model.{min(extra)}: unknown key "
                          f"(allowed: {', '.join(sorted(_MODEL_KEYS))})")
    model = ModelConfig()
    if "path" in table:
        model.path = _type(f"{name}: model.path", table["path"], str,
                           "'default', 'none' or a path to an ONNX model")
        if model.path not in ("default", "none") and not os.path.isfile(model.path):
            raise ConfigError(f"{name}: model.path: no such file {model.path!r}")
    if "rate_hz" in table:
        model.rate_hz = float(_type(f"{name}: model.rate_hz", table["rate_hz"], (int, float),
                                    "a number"))
        if not 0 < model.rate_hz <= 1000:
            raise ConfigError(f"{name}: model.rate_hz: must be above 0 and at most 1000")
    if "device" in table:
        model.device = _type(f"{name}: model.device", table["device"], str,
                             "'cpu', 'cuda' or 'cuda:N'")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", model.device):
            raise ConfigError(f"{name}: model.device: must be 'cpu', 'cuda' or 'cuda:N', "
                              f"not {model.device!r}")
    if "threads" in table:
        model.threads = _type(f"{name}: model.threads", table["threads"], int, "an integer")
        if model.threads < 0:
            raise ConfigError(f"{name}: model.threads: must be >= 0 (0: ONNX Runtime's default)")
    return model


def jwt_from_environment() -> dict[str, Any]:
    """Server keyword arguments for the token key, from the environment variables."""
    secret = os.environ.get("WIFI_DENSEPOSE_JWT_SECRET") or None
    key_path = os.environ.get("WIFI_DENSEPOSE_JWT_PUBLIC_KEY") or None
    alg = os.environ.get("WIFI_DENSEPOSE_JWT_ALGORITHM", "RS256" if key_path else "HS256")
    if key_path:
        try:
            with open(key_path) as f:
                return {"jwt_public_key": f.read(), "jwt_algorithm": alg}
        except OSError as e:
            raise ConfigError(f"WIFI_DENSEPOSE_JWT_PUBLIC_KEY: {key_path}: {e.strerror}") from e
    return {"jwt_secret": secret, "jwt_algorithm": alg}


def _calibration_file(where: str, path: str) -> dict[str, Any]:
    """A calibration saved as JSON (``wifi-densepose calibrate``, ``Server.calibrate``)."""
    import json

    try:
        with open(path) as f:
            c = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file {path!r}") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: {path!r} is not readable JSON: {e}") from None
    if not isinstance(c, dict) or "shape" not in c or "motion_threshold" not in c:
        raise ConfigError(f"{where}: {path!r} is not a calibration (wifi-densepose calibrate "
                          "writes one)")
    return c
