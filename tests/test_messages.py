"""Typed messages: a real server's events read as Message objects, with typed access to
the data of each event type; the dict API is unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from wifi_densepose import Message, Server, SyncClient


def test_messages_from_a_real_server():
    with Server() as server:
        server.add_environment("room_001")
        token = server.issue_token("t")
        with SyncClient(server.url, token) as client:
            client.subscribe("pose_data", environment_id="room_001")
            client.subscribe("activity_event")
            person = {"person_id": 1, "track_id": 7, "confidence": 0.9,
                      "position": {"x": 1.0, "y": 2.0}}
            server.publish("pose_data", {"frame_id": 3, "persons": [person]}, "room_001")
            server.publish("activity_event", {"event_type": "fall_detected",
                                              "severity": "critical"}, "room_001")
            pose = client.recv_message(timeout=5)
            alert = client.recv_message(timeout=5)
    assert isinstance(pose, Message) and pose.type == "pose_data"
    assert pose.pose_data()["persons"][0]["track_id"] == 7
    assert pose.environment_id == "room_001"
    assert pose.sequence is not None and alert.sequence == pose.sequence + 1
    assert pose.subscription_id and pose.subscription_id != alert.subscription_id
    assert pose.time is not None and pose.time.tzinfo == dt.UTC
    assert abs((dt.datetime.now(dt.UTC) - pose.time).total_seconds()) < 60
    assert alert.activity_event()["event_type"] == "fall_detected"
    with pytest.raises(TypeError, match="activity_event message, not pose_data"):
        alert.pose_data()


def test_not_an_envelope_is_a_type_error():
    with pytest.raises(TypeError, match="not a message envelope"):
        Message.from_dict({"data": {}})
    assert Message.from_dict({"type": "x", "data": {}}).time is None
