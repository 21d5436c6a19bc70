"""Your own recordings: LABELS.csv checks, training a classifier on real labelled CSI with
whole groups held out, and the trained model live in Server and in analyze (its classes in
pose_data, fall_detected from a fall class, a misfit model refused with its reason)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import LabelsError, ModelLoadError, Server, training
from wifi_densepose.testing import collect

LABELLED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "labelled"
ACTIVITIES = ("brushteeth", "washingdishes", "cook", "walk", "getintobed")
MAY, AUGUST = "gi-z_intel_2020-05-22", "gi-z_intel_2020-08-11"


def write_labels(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def activity_labels(tmp_path_factory) -> Path:
    """The shared activity rows in LABELS.csv form (path, label, group: the day)."""
    with open(LABELLED / "labels.csv") as f:
        rows = [[r["path"], r["label"], r["group"]] for r in csv.DictReader(f)
                if r["label"] in ACTIVITIES]
    return write_labels(tmp_path_factory.mktemp("labels") / "LABELS.csv",
                        ["path", "label", "group"], rows)


@pytest.fixture(scope="module")
def trained(activity_labels, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "activities.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return wdp.train(LABELLED, activity_labels, out, holdout_groups=[MAY], progress=False)


def test_a_day_never_trained_on_is_scored_beside_the_majority_class(trained):
    r = trained.report
    assert r is not None and r["groups"] == [MAY] and r["scored"] == 7
    # With the antennas in one order, no better than the majority (measured 0.000 vs
    # 0.429, docs/training.md): these recordings' activities are not in the features.
    assert r["accuracy"] <= r["baseline_accuracy"]
    assert r["baseline_class"] == "brushteeth"
    assert set(r["per_class"]) == set(r["labels"]) and len(r["confusion"]) == len(r["labels"])
    assert sum(map(sum, r["confusion"])) == r["scored"]
    assert trained.classes == sorted(ACTIVITIES)
    meta = trained.metadata
    assert json.loads(meta["wifi_densepose.holdout_groups"]) == [MAY]
    assert MAY not in json.loads(meta["wifi_densepose.train_groups"])


def test_training_is_reproducible(trained, activity_labels, tmp_path):
    again = wdp.train(LABELLED, activity_labels, tmp_path / "again.onnx", holdout_groups=[MAY],
                      progress=False)
    assert again.metadata["wifi_densepose.version"].split("-")[-1] == \
        trained.metadata["wifi_densepose.version"].split("-")[-1]


def test_the_trained_model_loads_and_answers_in_analyze(trained):
    model = wdp.Model.load(trained.path)
    assert model.kind == "classifier" and model.classes == trained.classes
    assert model.window == (1.0, 0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Someone washing dishes (the sensor sees motion in 73 % of its frames; a person
        # brushing their teeth is still enough to be mostly unseen in a 2.7 s recording).
        rec = wdp.read_csi(LABELLED / "gi-z_csi-data/intel/activity/may/washingdishes_1590160990.dat")
    messages = wdp.analyze(rec, model=trained.path)
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]
    classified = [p for p in poses if "classification" in p["metadata"]]
    assert classified, "no pose_data carried the classifier's class"
    assert all(p["metadata"]["model_version"] == model.version for p in classified)
    assert {p["metadata"]["classification"]["type"] for p in classified} <= set(model.classes)
    people = [q for p in classified for q in p["persons"]]
    assert people and all(q["activity"]["type"] in model.classes for q in people)
    assert all(not q["localized"] for q in people), "a classifier locates nobody"
    # Which frames carry which class does not depend on the inference thread's timing:
    # every window's answer is in before the next frame (three runs, the same frames).
    def classes(msgs):
        return [(m["data"]["metadata"]["source_time"],
                 m["data"]["metadata"].get("classification", {}).get("type"))
                for m in msgs if m["type"] == "pose_data"]
    first = classes(messages)
    for _ in range(2):
        assert classes(wdp.analyze(rec, model=trained.path)) == first


def test_the_trained_model_runs_in_a_server_with_its_classes_in_pose_data(trained):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = wdp.read_csi(LABELLED / "gi-z_csi-data/intel/activity/cook_1590161749.dat")
    with Server(model=trained.path) as server:
        poses = collect(server, "pose_data")
        server.add_environment("kitchen")
        replay = server.replay("kitchen", rec.path, speed=0)
        assert replay.wait(30)
        deadline = time.monotonic() + 20
        while not any("activity" in p for f in poses.items for p in f["persons"]):
            assert time.monotonic() < deadline, "no classified person in pose_data"
            time.sleep(0.05)
        info = server.model_info()
    assert info is not None and info["model_version"] == wdp.Model.load(trained.path).version
    assert info["kind"] == "classifier" and info["classes"] == trained.classes
    assert info["rate_hz"] == 4.0 and info["window_s"] == 1.0  # one answer every hop_s
    types = {p["activity"]["type"] for f in poses.items for p in f["persons"] if "activity" in p}
    assert types <= set(trained.classes)


def test_the_cli_trains_and_evaluates_with_json(activity_labels, tmp_path):
    out, report = tmp_path / "cli.onnx", tmp_path / "report.json"
    cmd = [sys.executable, "-m", "wifi_densepose", "train", "--data", str(LABELLED),
           "--labels", str(activity_labels), "--out", str(out), "--holdout-group", AUGUST,
           "--minutes", "1", "--quiet"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "baseline" in done.stdout and out.exists()
    cmd = [sys.executable, "-m", "wifi_densepose", "evaluate", "--model", str(out), "--data",
           str(LABELLED), "--labels", str(activity_labels), "--group", AUGUST, "--json",
           str(report), "--quiet"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    r = json.loads(report.read_text())
    for key in ("accuracy", "balanced_accuracy", "baseline_accuracy", "per_class", "confusion",
                "labels"):
        assert key in r
    assert r["groups"] == [AUGUST] and r["scored"] == 13
    # Trained on May alone: walk and getintobed are classes it never saw.
    assert r["per_class"]["walk"]["recall"] == 0.0


def test_esp32_segments_person_vs_background_held_out_in_time(tmp_path):
    """Start/end segments: the Wisensing crossings, the later half of the capture held out."""
    with open(LABELLED / "labels.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in ("person", "noise")]
    half = max(float(r["end_s"]) for r in rows) / 2
    labels = write_labels(tmp_path / "esp32.csv", ["path", "label", "group", "start_s", "end_s"],
                          [[r["path"], r["label"], "early" if float(r["start_s"]) < half
                            else "late", r["start_s"], r["end_s"]] for r in rows])
    result = wdp.train(LABELLED, labels, tmp_path / "esp32.onnx", holdout_groups=["late"],
                       progress=False)
    r = result.report
    assert r is not None and r["scored"] >= 20
    assert r["balanced_accuracy"] > 0.75 and r["accuracy"] > r["baseline_accuracy"] + 0.2


# ---- LABELS.csv: every mistake named by row and column -------------------------------

GOOD = "gi-z_csi-data/intel/activity/cook_1590161749.dat"


@pytest.mark.parametrize(("header", "rows", "where", "what"), [
    (["path", "group"], [[GOOD, "a"]], "column 'label'", "missing column"),
    (["path", "label"], [["nope.dat", "cook"]], "row 2, column 'path'", "no such file"),
    (["path", "label"], [[GOOD, "cook"], [GOOD, ""]], "row 3, column 'label'", "empty class"),
    (["path", "label", "start_s", "end_s"], [[GOOD, "cook", "2", "1"]], "row 2, column 'end_s'",
     "after start_s"),
    (["path", "label", "start_s", "end_s"], [[GOOD, "cook", "x", "1"]],
     "row 2, column 'start_s'", "not a number"),
    (["path", "label", "start_s", "end_s"], [[GOOD, "cook", "1", ""]], "row 2, column 'end_s'",
     "both start_s and end_s"),
    (["path", "label", "start_s"], [[GOOD, "cook", "1"]], "row 1", "together"),
    (["path", "label"], [[GOOD, "cook", "extra"]], "row 2", "3 values for 2 columns"),
])
def test_labels_errors_name_row_and_column(tmp_path, header, rows, where, what):
    labels = write_labels(tmp_path / "LABELS.csv", header, rows)
    with pytest.raises(LabelsError) as e:
        training.read_labels(labels, LABELLED)
    assert where in str(e.value) and what in str(e.value)
    assert isinstance(e.value, ValueError)


def test_a_column_it_does_not_read_is_named_in_a_warning_and_left_out(tmp_path):
    """The shared labelled set's own labels.csv has a `bpm` column."""
    labels = write_labels(tmp_path / "LABELS.csv", ["path", "label", "bpm", "grup"],
                          [[GOOD, "cook", "72", "a"]])
    with pytest.warns(UserWarning, match="column\\(s\\) 'bpm', 'grup' not read"):
        rows = training.read_labels(labels, LABELLED)
    assert [(r.label, r.group) for r in rows] == [("cook", GOOD)]


def test_an_unreadable_recording_is_named(tmp_path):
    (tmp_path / "junk.dat").write_bytes(b"this is not CSI at all" * 10)
    labels = write_labels(tmp_path / "LABELS.csv", ["path", "label"],
                          [["junk.dat", "a"], ["junk.dat", "b"]])
    with pytest.raises(LabelsError, match=r"row 2, column 'path': cannot read"):
        wdp.train(tmp_path, labels, tmp_path / "m.onnx", progress=False)


def test_training_refuses_what_it_cannot_do(activity_labels, tmp_path):
    with pytest.raises(wdp.InvalidArgumentError, match="not in the labels"):
        wdp.train(LABELLED, activity_labels, tmp_path / "m.onnx", holdout_groups=["nope"],
                  progress=False)
    with pytest.raises(wdp.InvalidArgumentError, match="nothing is left"):
        wdp.train(LABELLED, activity_labels, tmp_path / "m.onnx",
                  holdout_groups=[MAY, AUGUST], progress=False)
    with pytest.raises(wdp.InvalidArgumentError, match="unknown feature group"):
        wdp.train(LABELLED, activity_labels, tmp_path / "m.onnx", features=["colour"],
                  progress=False)
    one = write_labels(tmp_path / "one.csv", ["path", "label"], [[GOOD, "cook"]])
    with pytest.raises(wdp.InvalidArgumentError, match="two classes"):
        wdp.train(LABELLED, one, tmp_path / "m.onnx", progress=False)


# ---- the classifier contract and fall classes ---------------------------------------

def classifier(path: Path, classes: list[str], bias: list[float], **meta: str) -> Path:
    """A classifier whose answer is fixed by its bias (zero weights)."""
    n = len(training._names())
    metadata = {"wifi_densepose.version": "fixed", "wifi_densepose.kind": "classifier",
                "wifi_densepose.classes": json.dumps(classes),
                "wifi_densepose.feature_set": "wdp-window-v1",
                "wifi_densepose.window_s": "1.0", "wifi_densepose.hop_s": "0.25"}
    metadata.update(meta)
    params = [np.zeros((n, len(bias))), np.asarray(bias, float)]
    training._export(str(path), params, list(range(n)), np.zeros(n), np.ones(n), metadata)
    return path


def test_a_fall_class_raises_one_fall_detected_per_fall(tmp_path):
    model = classifier(tmp_path / "fall.onnx", ["fall", "walking"], [5.0, 0.0])
    run = wdp.sim.generate("walk", seed=3, duration_s=4)
    messages = wdp.analyze(run, model=model)
    falls = [m["data"] for m in messages if m["type"] == "activity_event"
             and m["data"]["event_type"] == "fall_detected"]
    assert len(falls) == 1, "a class that stays 'fall' is one fall, not one per window"
    assert falls[0]["details"]["source"] == "classifier"
    assert falls[0]["details"]["class"] == "fall"


@pytest.mark.parametrize(("meta", "reason"), [
    ({"wifi_densepose.classes": '["only"]'}, "at least two classes"),
    ({"wifi_densepose.classes": '["a", "a"]'}, "distinct"),
    ({"wifi_densepose.classes": '["a", "b", "c"]'}, "one column per class"),
    ({"wifi_densepose.feature_set": "other-v9"}, "trained on features"),
    ({"wifi_densepose.window_s": "0"}, "window_s"),
    ({"wifi_densepose.kind": "pose"}, "expected \"classifier\""),
])
def test_a_misfit_classifier_is_refused_with_its_reason(tmp_path, meta, reason):
    path = classifier(tmp_path / "bad.onnx", ["a", "b"], [1.0, 0.0], **meta)
    with pytest.raises(ModelLoadError, match="contract") as e:
        wdp.Model.load(path)
    assert reason in str(e.value)


def test_evaluate_scores_fall_rows_by_the_pipelines_fall_detected(tmp_path):
    # A classifier that always answers "fall": every fall row is found, and every other
    # row is a false alarm, so recall 1 and precision = fall rows / all rows.
    model = classifier(tmp_path / "fall.onnx", ["fall", "walking"], [5.0, 0.0])
    labels = write_labels(tmp_path / "LABELS.csv", ["path", "label", "group"], [
        ["gi-z_csi-data/intel/activity/cook_1590161749.dat", "fall", "a"],
        ["gi-z_csi-data/intel/activity/may/brushteeth_1590158645.dat", "walking", "a"],
        ["gi-z_csi-data/intel/activity/may/brushteeth_1590158650.dat", "walking", "a"],
    ])
    r = wdp.evaluate_labelled(model, LABELLED, labels)
    assert r["end_to_end"]["fall_recall"] == 1.0
    assert r["end_to_end"]["fall_precision"] == pytest.approx(1 / 3, abs=1e-3)


def test_the_old_held_out_figure_was_the_card_s_antenna_flips(activity_labels, tmp_path):
    # Read as the official reader reads them, the two antennas of these 2x2 captures trade
    # places whenever the card re-selects them, which it does in every cooking, washing and
    # walking recording and in no brushing or bed one. A classifier on those reads beat the
    # majority on a day it never saw (measured 0.857 vs 0.429) by telling the flips apart,
    # not the activities; in antenna order it does not (the test above).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = wdp.train(LABELLED, activity_labels, tmp_path / "flips.onnx", holdout_groups=[MAY],
                      progress=False, read_options={"antenna_order": False})
    r = m.report
    assert r is not None and r["accuracy"] > r["baseline_accuracy"] + 0.1



def test_training_warns_of_mixed_layouts_and_of_held_out_classes_it_never_saw(tmp_path):
    """ESP32 1x1 and Intel 2x2 rows in one labels file; and a held-out day whose classes
    (walk, getintobed: August only) training never saw."""
    esp = "wisensing-esp32/" + next(p.name for p in (LABELLED / "wisensing-esp32").iterdir()
                                    if p.suffix == ".csv")
    labels = write_labels(tmp_path / "LABELS.csv", ["path", "label"],
                          [[GOOD, "cook"], [esp, "person"]])
    with pytest.warns(UserWarning, match="2 CSI layouts"):
        wdp.train(LABELLED, labels, tmp_path / "m.onnx", progress=False)
    labels = write_labels(tmp_path / "HELD.csv", ["path", "label", "group"],
                          [[GOOD, "cook", "a"], [GOOD, "stir", "a"], [GOOD, "walk", "b"]])
    with pytest.warns(UserWarning, match="'walk' are in no training row"):
        wdp.train(LABELLED, labels, tmp_path / "h.onnx", holdout_groups=["b"], progress=False)
