"""``wifi-densepose evaluate --pipeline``: the live pipeline scored end to end on held-out
simulated days, each figure beside its baseline."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from wifi_densepose import InvalidArgumentError, pipeline_eval


def test_figures_add_up_and_the_empty_room_stays_empty():
    r = pipeline_eval.evaluate(clips=2, duration_s=12.0, model=None)
    o = r["occupancy"]
    # Every scored frame is in the confusion matrix once.
    assert sum(map(sum, o["confusion_rows_true_0_3_cols_said_0_3"])) == r["frames"] > 0
    assert 0.0 <= o["accuracy"] <= 1.0 and 0.0 <= o["majority"] <= 1.0
    # The first two held-out days hold empty stretches; the sensor reports nobody there
    # (measured 0.000; docs/sensing.md).
    assert r["empty_frames"] > 0 and r["empty_frames_reporting_someone"] <= 0.05
    # Without a model the sensor's activity (walking while the channel moves, the rest
    # posture while still) is scored where the localizer places the person; no fall alarm.
    a = r["activity"]
    assert a["scored"] > 0 and 0.0 <= a["balanced_accuracy"] <= 1.0
    assert r["falls"]["false_alarms"] == 0


def test_several_receivers_hear_the_same_days():
    """``--nodes``: each day heard by receivers of one transmitter, their sensors fused and
    the multi-antenna links' maps fused; one-antenna nodes place nobody, 3-antenna ones
    place the walker."""
    one = pipeline_eval.evaluate(clips=1, duration_s=12.0, device="esp32", model=None, nodes=2)
    assert one["nodes"] == 2 and one["frames"] > 0
    assert one["position"]["reported"] == 0  # no angle on one antenna
    three = pipeline_eval.evaluate(clips=1, duration_s=12.0, model=None, nodes=2)
    assert three["position"]["reported"] > 0
    # The same day and truth either way: the frames scored come from the same clip.
    assert sum(map(sum, three["occupancy"]["confusion_rows_true_0_3_cols_said_0_3"])) == three["frames"]
    with pytest.raises(InvalidArgumentError, match="oracle"):
        pipeline_eval.evaluate(clips=1, duration_s=12.0, oracle=True, nodes=2)
    with pytest.raises(InvalidArgumentError, match="1..16"):
        pipeline_eval.evaluate(clips=1, duration_s=12.0, nodes=0)


def test_a_clip_is_scored_from_the_messages_alone():
    """A hand-made stream: one true person placed 1 m off, occupancy said right, one alarm
    1 s after the true impact, one before the fall began, and one for a fall too close to
    the clip's end to be scored."""
    n = 600
    ts = np.arange(n) / 100.0
    kp = np.zeros((n, 1, 17, 3))
    kp[:, 0, :, :2] = [2.0, 2.0]  # every keypoint at the hips, for simple distances
    data = {"timestamps": ts, "occupancy": np.ones(n, np.int64), "present": np.ones((n, 1), bool),
            "activity": np.zeros((n, 1), np.int64), "keypoints_3d": kp, "room_size": [6.0, 5.0, 3.0],
            "falls": np.array([[0, 2.5, 3.0, np.nan], [0, 5.5, 5.8, np.nan]])}

    def pose(t: float) -> dict:
        return {"type": "pose_data", "data": {"metadata": {"source_time": t}, "persons": [
            {"position": {"x": 3.0, "y": 2.0}, "activity": {"type": "standing"},
             # Keypoints where the position is: 1 m off in a 6 m wide room, 0.167 of it.
             "keypoints": [{"x": 0.5, "y": 0.4}] * 17}]}}

    msgs = [{"type": "occupancy_update", "data": {"current_occupancy": 1}}]
    for t in np.arange(0.0, 6.0, 0.1):
        msgs.append(pose(float(t)))
        if abs(t - 5.9) < 1e-9:
            msgs.append({"type": "activity_event", "data": {"event_type": "fall_detected"}})
        if abs(t - 4.0) < 1e-9:
            msgs.append({"type": "activity_event", "data": {"event_type": "fall_detected"}})
        if abs(t - 2.1) < 1e-9:
            msgs.append({"type": "activity_event", "data": {"event_type": "fall_detected"}})
    c = pipeline_eval.score_clip(data, msgs)
    r = pipeline_eval.summarize([c])
    assert r["occupancy"]["accuracy"] == 1.0
    assert abs(r["position"]["median_m"] - 1.0) < 1e-9
    assert abs(r["position"]["centre_median_m"] - np.hypot(1.0, 0.5)) < 1e-9
    assert r["activity"]["recall"] == {"standing": 1.0}
    # Every scored frame is a standing person, called standing, alone in the room.
    scored = r["activity"]["scored"]
    assert scored > 0
    assert r["activity"]["confusion_rows_true_cols_said"][0] == [scored, 0, 0, 0, 0]
    assert r["activity"]["one_person_in_the_room"] == {
        "scored": scored, "recall": {"standing": 1.0}, "balanced_accuracy": 1.0}
    k = r["keypoints"]
    assert k["pck@0.1"] == 0.0 and k["pck@0.2"] == 1.0
    # The mean pose is the truth here; the mean shape stamped at the reported position
    # is as far off as the reported keypoints.
    assert k["mean_pose_pck@0.1"] == 1.0
    assert k["shape_at_position_pck@0.1"] == 0.0 and k["shape_at_position_pck@0.2"] == 1.0
    # The alarm at 2.1 s comes before the descent (2.5 s): a false alarm. The one at 4.0 s
    # finds the fall, 1.0 s after its impact (3.0 s). The fall at 5.5 s cannot be alerted
    # within the clip (5.99 s): not scored, and its alarm is not false.
    assert r["falls"]["falls"] == 1
    assert r["falls"]["found"] == 1 and r["falls"]["false_alarms"] == 1
    assert abs(r["falls"]["max_delay_s"] - 1.0) < 1e-9


def test_the_cli_prints_the_table_and_keeps_the_figures(tmp_path):
    saved = tmp_path / "pipeline_eval.json"
    saved.write_text(json.dumps({"esp32/none": {"kept": True}}))
    out = subprocess.run([sys.executable, "-m", "wifi_densepose", "evaluate", "--pipeline",
                          "--clips", "1", "--duration", "10", "--model", "none", "--quiet",
                          "--save", str(saved), "--json", str(tmp_path / "run.json")],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "occupancy right" in out and "always one" in out and "never-fall" in out
    # The run is kept under its device/model key, beside the other runs' figures.
    kept = json.loads(saved.read_text())
    assert kept["esp32/none"] == {"kept": True}
    assert kept["intel5300/none"]["clips"] == 1
    assert kept["intel5300/none"]["occupancy"]["accuracy"] is not None
    # --json OUT writes the figures there too (it used to print them and ignore OUT).
    assert f"wrote {tmp_path / 'run.json'}" in out
    assert json.loads((tmp_path / "run.json").read_text()) == kept["intel5300/none"]


def test_the_oracle_column_sees_what_the_analytics_make_of_the_truth():
    """Oracle detections through a live server, realigned to simulated time: the counts and
    places are the truth's (measured 1.00 and 0.03 m on two clips), so a misaligned clock
    or room frame would show here."""
    r = pipeline_eval.evaluate(clips=1, duration_s=12.0, oracle=True)
    assert r["model"] == "oracle" and r["frames"] > 200
    assert r["occupancy"]["accuracy"] >= 0.9
    assert r["position"]["reported"] > 0 and r["position"]["median_m"] <= 0.3


def test_another_set_of_days_is_another_set_and_reported_as_such():
    default = pipeline_eval.evaluate(clips=1, duration_s=10.0, model=None)
    other = pipeline_eval.evaluate(clips=1, duration_s=10.0, model=None, first_clip=5000)
    assert (default["first_clip"], other["first_clip"]) == (1000, 5000)
    assert other["seed_base"] == default["seed_base"] + 4000
    # Another room, another day: where the reported person was against the truth differs.
    assert other["position"] != default["position"]
    with pytest.raises(InvalidArgumentError, match="first_clip"):
        pipeline_eval.evaluate(clips=1, duration_s=10.0, model=None, first_clip=999)


def test_one_antenna_nodes_report_walking_and_a_posture_at_rest():
    # Two ESP32 nodes' frames reach the room a few ms out of order; the rest posture takes
    # them as one run (src/analytics/rest_posture.rs) and the still person gets a posture,
    # not only "walking" while moving. Day 1008 holds one person.
    r = pipeline_eval.evaluate(clips=1, duration_s=20.0, device="esp32", model=None, nodes=2,
                               first_clip=1008)
    said = np.array(r["activity"]["confusion_rows_true_cols_said"]).sum(axis=0)
    assert said.sum() > 100
    assert said[[0, 2, 3]].sum() > 0, said  # standing, sitting or lying
