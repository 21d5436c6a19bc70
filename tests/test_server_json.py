"""Event data and the server's reports reach Python as objects built straight from the
engine's JSON values, and event data, settings and calibrations reach the engine as values
built straight from the Python objects (src/python/json.rs): the same values and types a
``json.dumps``/``json.loads`` round trip would give, with no text in between."""

from __future__ import annotations

import json
import threading

import pytest

DATA = {
    "event": "typed",
    "int": 3,
    "negative": -7,
    "big": 2**64 - 1,  # above i64: still an int
    "float": 1.0,  # stays a float, not the int 1
    "tiny": 1e-300,
    "none": None,
    "flag": False,
    "text": "héllo \"quoted\" \n",
    "list": [1, "a", True, None, [2.5, {}]],
    "nested": {"a": {"b": []}},
}


def test_callback_data_has_the_types_json_would_give(densepose_server):
    got: list[dict] = []
    done = threading.Event()

    def handler(data):
        if data.get("event") == "typed":
            got.append(data)
            done.set()

    densepose_server.on("system_event", handler)
    try:
        densepose_server.publish("system_event", DATA)
        assert done.wait(5)
    finally:
        densepose_server.off("system_event", handler)
    data = got[0]
    assert data == json.loads(json.dumps(DATA))
    assert type(data["float"]) is float and type(data["int"]) is int
    assert type(data["big"]) is int and data["big"] == 2**64 - 1
    assert type(data["list"][2]) is bool and data["list"][4] == [2.5, {}]


def test_reports_are_plain_objects(densepose_server):
    densepose_server.add_environment("room_json")
    stats = densepose_server.environment_stats("room_json")
    assert type(stats) is dict and stats["frames"] == 0
    assert json.loads(json.dumps(stats)) == stats
    info = densepose_server.model_info()  # the default model
    assert type(info) is dict and type(info["rate_hz"]) is float
    assert densepose_server.broker_status() is None
    changed = densepose_server.configure({"detection.max_persons": 2})
    assert changed == {"detection.max_persons": 2}
    with pytest.raises(ValueError, match="from 1 to 16"):
        densepose_server.configure({"detection.max_persons": 0})


def _published(server, data):
    """What a callback receives for ``data`` published as a ``system_event``."""
    got: list[dict] = []
    done = threading.Event()

    def handler(d):
        if d.get("event") == "shaped":
            got.append(d)
            done.set()

    server.on("system_event", handler)
    try:
        server.publish("system_event", {"event": "shaped", **data})
        assert done.wait(5)
    finally:
        server.off("system_event", handler)
    return got[0]


def test_inputs_cross_as_objects_with_json_s_rules(densepose_server):
    # Event data, settings and calibrations are converted from the Python objects
    # directly (src/python/json.rs): what arrives is what a json.dumps/json.loads round
    # trip would give.
    data = {"tuple": (1, 2.5), "keys": {3: "a", 2.5: "b", False: "c", None: "d"},
            "exact": 0.1 + 0.2, "big": 2**70}
    got = _published(densepose_server, data)
    expected = json.loads(json.dumps({"event": "shaped", **data}))
    assert got == expected
    assert got["keys"] == {"3": "a", "2.5": "b", "false": "c", "null": "d"}
    assert got["exact"] == 0.1 + 0.2  # the same f64, not a reparsed one


def test_inputs_json_cannot_hold_are_refused_by_class(densepose_server):
    from wifi_densepose import ArgumentTypeError, ConfigError, InvalidArgumentError, Server

    with pytest.raises(InvalidArgumentError, match="event data: nan is not a JSON number"):
        densepose_server.publish("system_event", {"x": float("nan")})
    with pytest.raises(ArgumentTypeError, match="type set is not JSON serializable"):
        densepose_server.publish("system_event", {"x": {1}})
    with pytest.raises(ArgumentTypeError, match="keys must be str"):
        densepose_server.publish("system_event", {"x": {(1, 2): 0}})
    # Nesting past serde_json's parser limit, and a list holding itself, stop cleanly
    # (the process would die of a stack overflow otherwise).
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(InvalidArgumentError, match="nested deeper than 128"):
        densepose_server.publish("system_event", {"x": deep})
    loop: list = []
    loop.append(loop)
    with pytest.raises(InvalidArgumentError, match="nested deeper"):
        densepose_server.publish("system_event", {"x": loop})
    with pytest.raises(ConfigError, match="settings: inf is not a JSON number"):
        densepose_server.configure({"detection.confidence_threshold": float("inf")})
    with pytest.raises(ConfigError, match="config: nan"):
        Server(config={"stall_timeout_s": float("nan")})
    with pytest.raises(InvalidArgumentError, match="not a calibration"):
        densepose_server.set_calibration("room_001", {"seconds": 1})
    assert densepose_server.running  # none of it reached the engine
