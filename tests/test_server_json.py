"""Event data and the server's reports reach Python as objects built straight from the
engine's JSON values (src/python/server.rs, ``json_to_py``): the same values and types
``json.loads`` would give, with no text in between."""

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
