"""What the server says about itself: performance_update with measured figures
(delivery latency percentiles, queues, inference load), system_event when a component's
health changes (once per change), and system_stopping before a shutdown's goodbye."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from wifi_densepose import Server, SyncClient, sim
from wifi_densepose.client import ConnectionLost
from wifi_densepose.testing import collect


def until(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_performance_update_reports_inference_and_queues():
    with Server(config={"performance_interval_s": 0.3}) as server:
        perf = collect(server, "performance_update")
        server.add_environment("room_001")
        run = server.simulate("room_001", "walk", seed=3, duration_s=3, speed=2.0)
        until(lambda: any(p["metrics"].get("inference_windows_per_second", 0) > 0
                          for p in perf.items))
        run.stop()
    busy = [p["metrics"] for p in perf.items if p["metrics"].get("inference_windows_per_second")]
    m = busy[-1]
    assert m["environment_queues"].keys() == {"room_001"}
    assert m["inference_mean_batch"] >= 1
    assert 0 <= m["inference_busy_percent"] <= 100
    # 30 windows per second of source clock at 2x speed: about 60 per wall second.
    assert max(b["inference_windows_per_second"] for b in busy) > 20


def test_a_saturated_environment_is_reported_degraded_then_healthy_once_each():
    config = {"performance_interval_s": 0.1, "environment_queue": 32}
    with Server(config=config, inference_rate_hz=1000) as server:  # a window per frame
        events = collect(server, "system_event")
        server.add_environment("busy")
        csi = np.ascontiguousarray(sim.generate("walk", seed=1, duration_s=6)["csi"])
        stamps = list(np.arange(len(csi)) * 0.001)
        feeder = threading.Thread(target=server.inject_csi, args=("busy", csi, stamps))
        feeder.start()

        def health(status):
            return [e for e in events.items if e.get("event") == "component_health"
                    and e["component"] == "environment:busy" and e["status"] == status]

        until(lambda: health("degraded"))
        feeder.join()
        until(lambda: health("healthy"))
        time.sleep(0.5)  # a few more ticks: no repeats while the state holds
        degraded, healthy = health("degraded"), health("healthy")
    assert len(degraded) == 1 and len(healthy) == 1
    assert degraded[0]["previous_status"] == "healthy" and degraded[0]["severity"] == "warning"
    assert "input queue" in degraded[0]["message"]
    assert healthy[0]["previous_status"] == "degraded"


@pytest.mark.parametrize("subscribed", [True, False])
def test_clients_hear_system_stopping_before_the_goodbye(subscribed):
    server = Server().start()
    server.add_environment("room_001")
    token = server.issue_token("t")
    with SyncClient(server.url, token, reconnect=False) as client:
        if subscribed:
            client.subscribe("system_event")
        server.stop()
        seen = []
        while True:
            try:
                msg = client.recv(timeout=5)
            except (ConnectionLost, TimeoutError):  # closed after the goodbye
                break
            seen.append(msg)
            if msg["type"] == "disconnect":
                break
    kinds = [(m["type"], m["data"].get("event") or m["data"].get("reason")) for m in seen]
    assert kinds[-1] == ("disconnect", "server_shutdown"), kinds
    stopping = [k for k in kinds if k == ("system_event", "system_stopping")]
    assert len(stopping) == (1 if subscribed else 0), kinds


def test_a_client_subscribing_to_occupancy_hears_each_rooms_current_state_at_once():
    """occupancy_update is published on change; a client that subscribes later used to hear
    nothing until the next change. It now gets each granted room's last one first."""
    with Server(model=None) as server:
        server.add_environment("room_a")
        server.add_environment("room_b")

        def occupancy(env: str, now: int, before: int) -> None:
            server.publish("occupancy_update", {"current_occupancy": now,
                                                "previous_occupancy": before,
                                                "change_type": "person_entered", "persons": []},
                           env)

        occupancy("room_a", 2, 1)
        occupancy("room_a", 1, 2)
        occupancy("room_b", 3, 2)
        token = server.issue_token("t", environments=["room_a"])
        with SyncClient(server.url, token, reconnect=False) as client:
            client.subscribe("pose_data")  # no occupancy subscription: nothing retained
            with pytest.raises(TimeoutError):
                client.recv(timeout=0.3)
            client.subscribe("occupancy_update")
            first = client.recv(timeout=5)
            assert first["type"] == "occupancy_update"
            assert (first["data"]["environment_id"], first["data"]["current_occupancy"]) == ("room_a", 1)
            with pytest.raises(TimeoutError):  # room_b is not granted; room_a's older one is gone
                client.recv(timeout=0.3)
            occupancy("room_a", 0, 1)
            assert client.recv(timeout=5)["data"]["current_occupancy"] == 0
