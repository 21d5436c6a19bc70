"""The ``wifi-densepose serve --config FILE`` TOML file, validated before anything starts.

::

    [server]                 # limits and ports (docs/protocol.md, "Configuration")
    port = 8000

    [server.broker]          # several nodes on one Redis (docs/deployment.md); optional
    url = "redis://10.0.0.5:6379"
    node_id = "node-a"       # with a broker, simulate/replay sources run on the node
                             # holding the environment's lease; others stand by

    [[environments]]
    id = "room_001"
    device = "intel5300"
    source = "simulate"      # simulate | replay | udp | none
    scenario = "walk"        # simulate: a scenario name (wifi-densepose simulate --list)
    seed = 0
    speed = 1.0              # simulate, replay: 1 = real time, 0 = flat out
    oracle = false           # simulate: tracking/analytics from the ground truth (labelled)

    [[environments]]
    id = "lab"
    source = "replay"
    path = "walk.dat"        # replay: a recording; format is detected unless given
    # format = "intel5300"

    [[environments]]
    id = "ward_3"
    source = "udp"
    node = 7                 # udp: the ESP32 node id feeding this room

    [udp]
    port = 5500              # where ESP32 nodes send (docs/udp-frame.md)

Secrets never live in the file: the HS256 secret comes from WIFI_DENSEPOSE_JWT_SECRET,
an RS256/ES256 public key from WIFI_DENSEPOSE_JWT_PUBLIC_KEY (a PEM file path) with
WIFI_DENSEPOSE_JWT_ALGORITHM. Every error names the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("simulate", "replay", "udp", "none")
_ENV_KEYS = {
    "simulate": {"id", "device", "source", "scenario", "seed", "speed", "duration_s", "oracle"},
    "replay": {"id", "device", "source", "path", "format", "speed"},
    "udp": {"id", "device", "source", "node"},
    "none": {"id", "device", "source"},
}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key."""


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
    oracle: bool = False


@dataclass
class ServeConfig:
    server: dict[str, Any] = field(default_factory=dict)
    environments: list[Environment] = field(default_factory=list)
    udp_port: int | None = None
    udp_host: str = "127.0.0.1"
    jwt: dict[str, Any] = field(default_factory=dict)


def _type(where: str, value: Any, kind: type | tuple, name: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: must be {name}, not a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: must be {name}, not {type(value).__name__} {value!r}")
    return value


def load(path: str | os.PathLike) -> ServeConfig:
    """Reads and validates a serve configuration file."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as e:  # Python < 3.11
        raise ConfigError("reading TOML needs Python 3.11+") from e
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
    unknown = set(doc) - {"server", "environments", "udp"}
    if unknown:
        raise ConfigError(f"{name}: unknown key {min(unknown)!r} "
                          "(allowed: server, environments, udp)")
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
        if source == "replay":
            env.path = _type(f"{where}.path", raw.get("path"), str, "a path to a recording")
            if not os.path.isfile(env.path):
                raise ConfigError(f"{where}.path: no such file {env.path!r}")
            if "format" in raw:
                env.format = _type(f"{where}.format", raw["format"], str, "a string")
        if source == "udp":
            env.node = _type(f"{where}.node", raw.get("node"), int, "an integer node id")
            if not 0 <= env.node <= 65535:
                raise ConfigError(f"{where}.node: {env.node} is not a 16-bit node id")
        cfg.environments.append(env)
    udp = _type(f"{name}: udp", doc.get("udp", {}), dict, "a table")
    extra = set(udp) - {"port", "host"}
    if extra:
        raise ConfigError(f"{name}: udp.{min(extra)}: unknown key (allowed: host, port)")
    if "port" in udp:
        cfg.udp_port = _type(f"{name}: udp.port", udp["port"], int, "an integer")
    if "host" in udp:
        cfg.udp_host = _type(f"{name}: udp.host", udp["host"], str, "a string")
    if any(e.source == "udp" for e in cfg.environments) and cfg.udp_port is None:
        raise ConfigError(f"{name}: udp.port: required when an environment's source is 'udp'")
    cfg.jwt = jwt_from_environment()
    return cfg


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
