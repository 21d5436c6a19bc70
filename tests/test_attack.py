"""Attacks on the server by a token holder, a stranger on the LAN and a careless caller
(issue 15): each holds, and each test here failed before the fix that made it hold
(docs/reliability.md, "Under attack")."""

from __future__ import annotations

import re

import pytest
from wifi_densepose import Server

from .conftest import connect, request, wait_for


def metric(server: Server, name: str) -> int:
    return int(re.search(rf"^{name} (\d+)$", server.metrics(), re.MULTILINE).group(1))


@pytest.mark.parametrize("fps", [1e-300, 5e-324, 0.0001])
async def test_a_tiny_max_fps_is_refused_and_publishing_goes_on(fps):
    # max_fps 1e-300 was accepted; the next event panicked the publishing thread
    # (`Server.publish` raised PanicException) and the bystander got nothing more.
    with Server() as s:
        token = s.issue_token("attacker", environments=[])
        async with connect(s, token) as bad, connect(s, s.issue_token("nurse")) as good:
            await wait_for(bad)
            await wait_for(good)
            reply = await request(bad, "subscribe", {"subscriptions": [
                {"event_type": "system_event", "throttle": {"max_fps": fps}}]})
            assert reply["type"] == "error", reply
            assert reply["data"]["error_code"] == "SUBSCRIPTION_ERROR"
            assert reply["data"]["details"]["field"] == "subscriptions[0].throttle.max_fps"
            # The same value inside `filters`, as update_subscription allows.
            reply = await request(bad, "subscribe", {"subscriptions": [
                {"event_type": "system_event", "filters": {"max_fps": fps}}]})
            assert reply["type"] == "error", reply
            await request(good, "subscribe", {"subscriptions": [{"event_type": "system_event"}]})
            for i in range(3):
                s.publish("system_event", {"event": "tick", "n": i})
                m = await wait_for(good, lambda m: m["type"] == "system_event")
                assert m["data"]["n"] == i
            assert metric(s, "wdp_offer_panics_total") == 0
        s.stop()  # must not raise either


async def test_update_subscription_refuses_a_tiny_max_fps():
    with Server() as s:
        async with connect(s, s.issue_token("a")) as ws:
            await wait_for(ws)
            ack = await request(ws, "subscribe", {"subscriptions": [{"event_type": "pose_data"}]})
            sub = ack["data"]["active_subscriptions"][0]["subscription_id"]
            reply = await request(ws, "update_subscription",
                                  {"subscription_id": sub, "filters": {"max_fps": 1e-300}})
            assert reply["type"] == "error" and reply["data"]["details"]["field"] == "filters.max_fps"
            s.publish("pose_data", {"frame_id": 1, "persons": []}, "room_001")
            reply = await request(ws, "connection_status")
            assert reply["type"] == "connection_status"
