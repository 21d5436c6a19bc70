"""Tracking and analytics from Python: simulator truth made into noisy detections with
numpy, run through ``_native.run_analytics``, checked against the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from wifi_densepose import _native, sim


def detections(d, rng, miss=0.1, noise_m=0.05):
    """Noisy model-like arrays from ground truth (room 6 x 5 m)."""
    kp2 = d["keypoints_2d"].astype(np.float64)
    n, p = kp2.shape[:2]
    scale = np.array([6.0, 5.0])
    kp = np.zeros((n, p, 17, 3))
    kp[..., :2] = kp2 + rng.normal(0.0, noise_m, kp2.shape) / scale
    kp[..., 2] = 0.9
    seen = d["present"] & (rng.random((n, p)) > miss)
    scores = np.where(seen, 0.9, 0.0)
    act = np.full((n, p, 5), 0.05)
    labels = d["activity"].astype(int)
    for c in range(5):
        act[..., c] += 0.6 * (labels == c)
    return kp, d["boxes"].astype(np.float64), scores, act


def run(d, rng, **kw):
    kp, boxes, scores, act = detections(d, rng)
    t = d["timestamps"].astype(np.float64)
    return [
        (ty, json.loads(data))
        for ty, data in _native.run_analytics(t, kp, boxes, scores, act, **kw)
    ]


def test_fall_recover_gives_one_alert_and_one_recovery():
    d = sim.generate(scenario="fall_recover", seed=1, duration_s=20, fps=20)
    ev = run(d, np.random.default_rng(0), window_s=5.0)
    falls = [e for ty, e in ev if ty == "activity_event" and e["event_type"] == "fall_detected"]
    assert len(falls) == 1
    _, start, impact, _ = d["falls"][0]
    # The payload carries the detected impact time: near the true one.
    stamp = falls[0]["details"]["impact_time"]
    assert stamp.startswith("1970-01-01T00:00:")
    assert abs(float(stamp[17:-1]) - impact) < 0.6
    assert falls[0]["details"]["recovery_detected"] is False
    assert 0.0 < falls[0]["details"]["fall_duration"] < 1.6
    rec = [e for ty, e in ev if ty == "activity_event" and e["event_type"] == "fall_recovered"]
    assert len(rec) == 1 and rec[0]["details"]["recovery_detected"] is True
    occ = [e for ty, e in ev if ty == "occupancy_update"]
    assert [o["current_occupancy"] for o in occ] == [1]
    windows = [e for ty, e in ev if ty == "analytics_stream"]
    assert len(windows) == 3 and windows[0]["window"] == "5_seconds"
    assert start < impact


def test_walking_raises_no_alert_and_shapes_are_checked():
    d = sim.generate(scenario="two_people", seed=2, duration_s=30, fps=20)
    ev = run(d, np.random.default_rng(1))
    assert not [e for ty, e in ev if ty == "activity_event" and e["event_type"] == "fall_detected"]
    started = [e for ty, e in ev if ty == "tracking_update" and e["event"] == "track_started"]
    assert len(started) == 2
    n = len(d["timestamps"])
    with pytest.raises(ValueError, match="activity"):
        _native.run_analytics(
            np.zeros(n),
            np.zeros((n, 2, 17, 3)),
            np.zeros((n, 2, 4)),
            np.zeros((n, 2)),
            np.zeros((n, 2, 4)),
        )
