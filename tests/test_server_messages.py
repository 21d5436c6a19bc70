"""Every message type of the spec, every filter and throttle, and every way a message can
be wrong, against a real server on loopback with the real ``websockets`` client."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from .conftest import connect, request, send, wait_for

ALL_EVENTS = [
    "pose_data",
    "pose_data_trajectory",
    "tracking_update",
    "system_event",
    "hardware_event",
    "activity_event",
    "occupancy_update",
    "performance_update",
    "config_update",
    "analytics_stream",
]


def person(pid, conf, **extra):
    p = {
        "person_id": pid,
        "track_id": pid + 10,
        "confidence": conf,
        "bounding_box": {"x": 1, "y": 2, "width": 3, "height": 4},
        "keypoints": [{"name": "nose", "x": 1, "y": 2, "confidence": 0.9, "visible": True}],
        "dense_pose": {"parts": [1, 2]},
        "activity": {"type": "walking", "confidence": 0.8, "velocity": {"x": 0.5, "y": 0.2}},
    }
    p.update(extra)
    return p


async def subscribe(ws, *subs):
    ack = await request(ws, "subscribe", {"subscriptions": list(subs)})
    assert ack["type"] == "ack", ack
    return [s["subscription_id"] for s in ack["data"]["active_subscriptions"]]


async def test_connection_status_first_then_envelope_and_sequence(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token, client_id="c1") as ws:
        first = await wait_for(ws, skip_heartbeats=False)
        assert first["type"] == "connection_status"
        d = first["data"]
        assert d["status"] == "connected" and d["session_id"].startswith("session_")
        assert d["active_subscriptions"] == 0
        seqs = [first["metadata"]["sequence"]]
        for _ in range(3):
            reply = await request(ws, "connection_status")
            assert set(reply) == {"type", "timestamp", "data", "metadata"}
            assert reply["timestamp"].endswith("Z")
            seqs.append(reply["metadata"]["sequence"])
        assert seqs == sorted(seqs) and len(set(seqs)) == 4


@pytest.mark.parametrize("event_type", ALL_EVENTS)
async def test_every_event_type_is_delivered(densepose_server, densepose_token, event_type):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        (sid,) = await subscribe(ws, {"event_type": event_type})
        data = {"marker": event_type, "confidence": 0.9, "persons": []}
        densepose_server.publish(event_type, data, "room_001")
        msg = await wait_for(ws, lambda m: m["type"] == event_type)
        assert msg["data"]["marker"] == event_type
        assert msg["metadata"]["subscription_id"] == sid


async def test_analytics_update_alias(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        ack = await request(ws, "subscribe", {"subscriptions": [{"event_type": "analytics_update"}]})
        assert ack["data"]["active_subscriptions"][0]["event_type"] == "analytics_stream"
        densepose_server.publish("analytics_update", {"window": "1_minute"})
        msg = await wait_for(ws, lambda m: m["type"] == "analytics_stream")
        assert msg["data"]["window"] == "1_minute"


async def test_unsubscribe_and_update(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        a, b = await subscribe(ws, {"event_type": "system_event"}, {"event_type": "hardware_event"})
        ack = await request(ws, "unsubscribe", {"subscription_ids": [a]})
        assert ack["data"]["removed"] == [a]
        assert [s["subscription_id"] for s in ack["data"]["active_subscriptions"]] == [b]
        densepose_server.publish("system_event", {"event": "x"})
        densepose_server.publish("hardware_event", {"event": "router_disconnected"})
        msg = await wait_for(ws, lambda m: m["type"] in ("system_event", "hardware_event"))
        assert msg["type"] == "hardware_event"
        err = await request(ws, "unsubscribe", {"subscription_ids": ["sub_999"]})
        assert err["data"]["error_code"] == "SUBSCRIPTION_ERROR"
        assert err["data"]["details"]["subscription_id"] == "sub_999"
        # update: the spec's example puts max_fps among the filters; both places work.
        (p,) = await subscribe(ws, {"event_type": "pose_data"})
        ack = await request(ws, "update_subscription", {"subscription_id": p, "filters": {"min_confidence": 0.8, "max_fps": 15}})
        sub = ack["data"]["active_subscriptions"][0]
        assert sub["filters"]["min_confidence"] == 0.8 and sub["throttle"]["max_fps"] == 15
        err = await request(ws, "update_subscription", {"subscription_id": p, "filters": {"min_confidence": -1}})
        assert err["data"]["details"]["field"] == "filters.min_confidence"
        status = await request(ws, "connection_status")
        assert status["data"]["active_subscriptions"] == 2


async def test_pose_filters_shape_each_view(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as a, connect(densepose_server, densepose_token) as b:
        await wait_for(a)
        await wait_for(b)
        await subscribe(a, {"event_type": "pose_data", "filters": {
            "environment_id": "room_001", "min_confidence": 0.7, "include_keypoints": False}})
        await subscribe(b, {"event_type": "pose_data", "filters": {
            "include_dense_pose": True, "include_velocity": True}})
        densepose_server.add_environment("room_002")
        densepose_server.publish("pose_data", {"frame_id": 0, "persons": [person(1, 0.9)]}, "room_002")
        densepose_server.publish("pose_data", {"frame_id": 1, "persons": [person(1, 0.9), person(2, 0.5)]}, "room_001")
        ma = await wait_for(a, lambda m: m["type"] == "pose_data")
        assert ma["data"]["frame_id"] == 1, "environment filter"
        (pa,) = ma["data"]["persons"]
        assert pa["person_id"] == 1
        assert "keypoints" not in pa and "dense_pose" not in pa
        assert "velocity" not in pa["activity"]
        mb0 = await wait_for(b, lambda m: m["type"] == "pose_data")
        assert mb0["data"]["frame_id"] == 0
        await asyncio.sleep(0.12)  # b's default 10 FPS throttle
        densepose_server.publish("pose_data", {"frame_id": 2, "persons": [person(1, 0.9), person(2, 0.5)]}, "room_001")
        mb = await wait_for(b, lambda m: m["type"] == "pose_data" and m["data"]["frame_id"] == 2)
        assert len(mb["data"]["persons"]) == 2
        assert mb["data"]["persons"][0]["keypoints"] and mb["data"]["persons"][0]["dense_pose"]
        assert mb["data"]["persons"][0]["activity"]["velocity"] == {"x": 0.5, "y": 0.2}


async def test_severity_and_event_type_filters(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await subscribe(
            ws,
            {"event_type": "system_event", "filters": {"severity": ["warning", "error", "critical"]}},
            {"event_type": "activity_event", "filters": {"event_types": ["fall_detected"], "min_confidence": 0.5}},
        )
        densepose_server.publish("system_event", {"event": "a", "severity": "info"})
        densepose_server.publish("system_event", {"event": "b"})  # no severity: counts as info
        densepose_server.publish("system_event", {"event": "c", "severity": "error"})
        densepose_server.publish("activity_event", {"event_type": "sitting", "confidence": 0.9})
        densepose_server.publish("activity_event", {"event_type": "fall_detected", "confidence": 0.3})
        densepose_server.publish("activity_event", {"event_type": "fall_detected", "confidence": 0.9, "n": 6})
        got = []
        while len(got) < 2:
            got.append(await wait_for(ws, lambda m: m["type"] in ("system_event", "activity_event")))
        assert [m["data"].get("event") or m["data"]["n"] for m in got] == ["c", 6]


async def test_max_fps_throttles_per_subscription(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await subscribe(ws, {"event_type": "pose_data", "throttle": {"max_fps": 5, "buffer_size": 20}})
        start = time.monotonic()
        for i in range(60):  # 60 frames at ~60 FPS over about a second
            densepose_server.publish("pose_data", {"frame_id": i, "persons": []}, "room_001")
            await asyncio.sleep(1 / 60)
        elapsed = time.monotonic() - start
        got = []
        try:
            while True:
                got.append(await wait_for(ws, lambda m: m["type"] == "pose_data", timeout=0.3))
        except TimeoutError:
            pass
        assert 0 < len(got) <= 5 * elapsed + 2
        assert len(got) >= 3
        status = await request(ws, "connection_status")
        assert status["data"]["throttled"] == 60 - len(got)


async def test_quality_presets(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        ack = await request(ws, "subscribe", {"subscriptions": [
            {"event_type": "pose_data", "quality": "high"},
            {"event_type": "pose_data", "quality": "low"},
            {"event_type": "pose_data"}]})
        throttles = [s["throttle"] for s in ack["data"]["active_subscriptions"]]
        assert throttles == [
            {"max_fps": 30.0, "buffer_size": 1},
            {"max_fps": 10.0, "buffer_size": 5},
            {"max_fps": 10.0, "buffer_size": 5},
        ]


@pytest.mark.parametrize(
    "sub,field",
    [
        ({"event_type": "pose_data", "filters": {"min_confidence": 1.5}}, "subscriptions[0].filters.min_confidence"),
        ({"event_type": "pose_data", "filters": {"min_confidence": "high"}}, "subscriptions[0].filters.min_confidence"),
        ({"event_type": "pose_data", "filters": {"include_keypoints": "yes"}}, "subscriptions[0].filters.include_keypoints"),
        ({"event_type": "pose_data", "filters": {"environment_id": 7}}, "subscriptions[0].filters.environment_id"),
        ({"event_type": "pose_data", "filters": {"environment_id": "nowhere"}}, "subscriptions[0].filters.environment_id"),
        ({"event_type": "pose_data", "filters": {"colour": "red"}}, "subscriptions[0].filters.colour"),
        ({"event_type": "pose_data", "throttle": {"max_fps": 0}}, "subscriptions[0].throttle.max_fps"),
        ({"event_type": "pose_data", "throttle": {"max_fps": 60}}, "subscriptions[0].throttle.max_fps"),
        ({"event_type": "pose_data", "throttle": {"buffer_size": 0}}, "subscriptions[0].throttle.buffer_size"),
        ({"event_type": "pose_data", "throttle": {"compression": "zip"}}, "subscriptions[0].throttle.compression"),
        ({"event_type": "pose_data", "throttle": {"speed": 1}}, "subscriptions[0].throttle.speed"),
        ({"event_type": "pose_data", "quality": "ultra"}, "subscriptions[0].quality"),
        ({"event_type": "system_event", "quality": "high"}, "subscriptions[0].quality"),
        ({"event_type": "system_event", "filters": {"severity": ["loud"]}}, "subscriptions[0].filters.severity"),
        ({"event_type": "system_event", "filters": {"severity": []}}, "subscriptions[0].filters.severity"),
        ({"event_type": "system_event", "filters": {"severity": "error"}}, "subscriptions[0].filters.severity"),
        ({"event_type": "activity_event", "filters": {"event_types": [1]}}, "subscriptions[0].filters.event_types"),
        ({"event_type": "activity_event", "throttle": {"max_fps": 1}}, "subscriptions[0].throttle.max_fps"),
        ({"event_type": "config_update", "filters": {"severity": ["info"]}}, "subscriptions[0].filters.severity"),
        ({"event_type": "teleport"}, "subscriptions[0].event_type"),
        ({"filters": {}}, "subscriptions[0].event_type"),
        ({"event_type": "pose_data", "filters": []}, "subscriptions[0].filters"),
        ({"event_type": "pose_data", "extra": 1}, "subscriptions[0].extra"),
    ],
)
async def test_invalid_subscriptions_name_the_field(densepose_server, densepose_token, sub, field):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        err = await request(ws, "subscribe", {"subscriptions": [sub]})
        assert err["type"] == "error"
        assert err["data"]["error_code"] == "SUBSCRIPTION_ERROR"
        assert err["data"]["details"]["field"] == field
        assert err["data"]["details"]["reason"]
        status = await request(ws, "connection_status")
        assert status["data"]["active_subscriptions"] == 0, "nothing was added"


async def test_subscribe_is_all_or_nothing(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        err = await request(ws, "subscribe", {"subscriptions": [
            {"event_type": "system_event"}, {"event_type": "pose_data", "filters": {"min_confidence": 2}}]})
        assert err["data"]["details"]["field"] == "subscriptions[1].filters.min_confidence"
        assert (await request(ws, "connection_status"))["data"]["active_subscriptions"] == 0
        for bad in [{}, {"subscriptions": []}, {"subscriptions": "pose_data"}]:
            err = await request(ws, "subscribe", bad)
            assert err["data"]["error_code"] == "SUBSCRIPTION_ERROR"
            assert err["data"]["details"]["field"] == "subscriptions"


@pytest.mark.parametrize(
    "raw,code",
    [
        ("not json", "INVALID_MESSAGE"),
        ("{\"type\": ", "INVALID_MESSAGE"),
        ("[1, 2]", "INVALID_MESSAGE"),
        ("{\"data\": {}}", "INVALID_MESSAGE"),
        ("{\"type\": 5}", "INVALID_MESSAGE"),
        ("{\"type\": \"subscribe\", \"data\": [1]}", "INVALID_MESSAGE"),
        ("{\"type\": \"teleport\"}", "UNKNOWN_MESSAGE_TYPE"),
        ("{\"type\": \"pose_data\", \"data\": {}}", "UNKNOWN_MESSAGE_TYPE"),
    ],
)
async def test_bad_messages_get_errors_and_connection_survives(densepose_server, densepose_token, raw, code):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await ws.send(raw)
        err = await wait_for(ws, lambda m: m["type"] == "error")
        assert err["data"]["error_code"] == code
        assert (await request(ws, "connection_status"))["data"]["status"] == "connected"


async def test_binary_frames_are_refused_politely(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await ws.send(b"\x00\x01garbage")
        err = await wait_for(ws, lambda m: m["type"] == "error")
        assert err["data"]["error_code"] == "INVALID_MESSAGE"
        assert err["data"]["details"]["reason"] == "binary_frame"
        assert (await request(ws, "connection_status"))["type"] == "connection_status"


async def test_heartbeat_both_ways(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token, client_id="hb") as ws:
        await wait_for(ws)
        reply = await request(ws, "heartbeat", {"client_id": "hb", "uptime": 1})
        assert reply["type"] == "heartbeat"
        assert reply["data"]["client_id"] == "hb"
        assert "uptime" in reply["data"] and reply["data"]["last_message"]


async def test_server_sends_periodic_heartbeats():
    from wifi_densepose import Server

    with Server(config={"heartbeat_interval_s": 0.2}) as s:
        async with connect(s, s.issue_token("me")) as ws:
            msg = await wait_for(ws, lambda m: m["type"] == "heartbeat", timeout=3, skip_heartbeats=False)
            assert msg["data"]["client_id"].startswith("client_")
            assert "server_time" in msg["data"]


async def test_graceful_disconnect(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        reply = await request(ws, "disconnect", {"reason": "client_requested"})
        assert reply["type"] == "disconnect"
        assert reply["data"]["reason"] == "client_requested"
        assert reply["data"]["resumable"] is False
        await ws.wait_closed()
        assert ws.close_code == 1000


async def test_per_subscription_and_connection_compression(densepose_server, densepose_token):
    import gzip
    import zlib

    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await subscribe(ws, {"event_type": "system_event", "throttle": {"compression": "gzip"}})
        densepose_server.publish("system_event", {"event": "zipped"})
        raw = await asyncio.wait_for(ws.recv(), 5)
        while isinstance(raw, str):  # skip any text control message
            raw = await asyncio.wait_for(ws.recv(), 5)
        msg = json.loads(gzip.decompress(raw))
        assert msg["data"]["event"] == "zipped" and msg["metadata"]["compression"] == "gzip"
    async with connect(densepose_server, densepose_token, compression="deflate") as ws:
        raw = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(raw, bytes), "no permessage-deflate offered: zlib binary frames"
        assert json.loads(zlib.decompress(raw))["type"] == "connection_status"


async def test_permessage_deflate_negotiated_with_websockets(densepose_server, densepose_token):
    import websockets

    url = f"{densepose_server.url}?token={densepose_token}"
    async with websockets.connect(url) as ws:  # websockets offers permessage-deflate
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert json.loads(await ws.recv())["type"] == "connection_status"
    from wifi_densepose import Server

    with Server(config={"permessage_deflate": False}) as plain:
        async with websockets.connect(f"{plain.url}?token={plain.issue_token('me')}") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers


async def test_one_event_once_per_connection(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        first, _ = await subscribe(ws, {"event_type": "system_event"},
                                   {"event_type": "system_event", "filters": {"severity": ["info"]}})
        densepose_server.publish("system_event", {"event": "once"})
        densepose_server.publish("system_event", {"event": "after"})
        a = await wait_for(ws, lambda m: m["type"] == "system_event")
        b = await wait_for(ws, lambda m: m["type"] == "system_event")
        assert [a["data"]["event"], b["data"]["event"]] == ["once", "after"]
        assert a["metadata"]["subscription_id"] == first


async def test_send_helper_exists(densepose_server, densepose_token):
    async with connect(densepose_server, densepose_token) as ws:
        await wait_for(ws)
        await send(ws, "heartbeat")
        assert (await wait_for(ws, lambda m: m["type"] == "heartbeat", skip_heartbeats=False))
