"""The bundled pose model through our runtime (ONNX Runtime via the Rust engine): it
loads with no configuration, fits the contract, beats trivial baselines on a held-out
simulated set by a clear margin and meets the figures docs/model.md states; a model that
does not fit the contract is refused at load with expected and actual shapes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from wifi_densepose import sim
from wifi_densepose.evaluate import evaluate
from wifi_densepose.features import windows_from_recording
from wifi_densepose.model import DEFAULT_MODEL, Model, ModelLoadError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# Margins over the baselines and the floors docs/model.md states. The bundled model beats
# the mean pose on keypoint placement only; on person count and activity it does NOT beat
# the majority baselines (docs/model.md says so), so nothing here claims it does.
PCK01_MARGIN = 0.03
PCK02_MARGIN = 0.05
MPJPE_RATIO = 0.97
STATED = {"pck@0.1": 0.12, "pck@0.2": 0.37, "mpjpe_m": 1.40}


@pytest.fixture(scope="module")
def model():
    return Model.default()


@pytest.fixture(scope="module")
def held_out(model):
    # 8 clips of 20 s from the held-out generator: seeds, rooms, paths never trained on.
    return evaluate(model, clips=8, duration_s=20.0)


def test_default_model_is_small_and_versioned(model):
    assert os.path.getsize(DEFAULT_MODEL) < 10 * 1024 * 1024
    assert model.version.startswith("wdp-sim-")
    assert model.slots == 2


def test_predict_shapes_and_ranges(model):
    data = sim.generate("walk", seed=77, duration_s=2.0, device="intel5300")
    x, ends = windows_from_recording(data["csi"], hop=16)
    out = model.predict(x)
    b = len(ends)
    assert out["presence"].shape == (b, 2)
    assert out["keypoints"].shape == (b, 2, 17, 3)
    assert out["boxes"].shape == (b, 2, 4)
    assert out["activity"].shape == (b, 2, 5)
    assert np.all((out["presence"] >= 0) & (out["presence"] <= 1))
    assert np.allclose(out["activity"].sum(-1), 1.0, atol=1e-4)
    # One window alone gives the same answer as inside the batch.
    one = model.predict(x[3])
    assert np.allclose(one["keypoints"][0], out["keypoints"][3], atol=1e-5)


def test_a_batch_larger_than_one_runtime_call_is_run_in_parts_with_the_same_answers(model):
    # Model.predict hands ONNX Runtime at most 1024 windows a call (its working memory
    # grows with the batch); the parts join up in order, dense pose included, and a
    # strided view reads the same as a contiguous copy.
    data = sim.generate("walk", seed=79, duration_s=1.0, device="intel5300")
    x, _ = windows_from_recording(data["csi"], hop=4)
    big = np.concatenate([x] * (2500 // len(x) + 1))[:2500]
    out = model.predict(big)
    assert out["keypoints"].shape == (2500, 2, 17, 3)
    assert out["dense_uv"].shape == (2500, 2, 2, 8, 8)
    for i in (0, 1023, 1024, 2047, 2048, 2499):
        one = model.predict(big[i])
        for key in ("presence", "keypoints", "activity", "dense_part"):
            assert np.allclose(one[key][0], out[key][i], atol=1e-5), (i, key)
    strided = model.predict(big[::2])
    assert np.allclose(strided["keypoints"], out["keypoints"][::2], atol=1e-5)


def test_dense_pose_outputs(model):
    assert model.has_dense_pose
    data = sim.generate("walk", seed=78, duration_s=1.0, device="intel5300")
    x, _ = windows_from_recording(data["csi"], hop=16)
    out = model.predict(x)
    b = len(x)
    assert out["dense_part"].shape == (b, 2, 25, 8, 8)
    assert out["dense_uv"].shape == (b, 2, 2, 8, 8)
    assert np.allclose(out["dense_part"].sum(axis=2), 1.0, atol=1e-4)
    assert np.all((out["dense_uv"] >= 0) & (out["dense_uv"] <= 1))


def test_dense_pose_is_scored(held_out):
    for side in ("model", "baseline"):
        for key in ("dense_part_iou", "dense_patch_iou"):
            assert 0.0 <= held_out[side][key] <= 1.0


def test_wrong_window_shape_is_a_value_error(model):
    with pytest.raises(ValueError, match=r"\(batch, 2, 32, 90\)"):
        model.predict(np.zeros((1, 2, 16, 90), np.float32))


def test_beats_mean_pose_on_held_out(held_out):
    m, b = held_out["model"], held_out["baseline"]
    assert held_out["windows"] > 500
    assert m["pck@0.1"] >= b["pck@0.1"] + PCK01_MARGIN, (m, b)
    assert m["pck@0.2"] >= b["pck@0.2"] + PCK02_MARGIN, (m, b)
    assert m["mpjpe_m"] <= b["mpjpe_m"] * MPJPE_RATIO, (m, b)


def test_meets_stated_figures(held_out):
    # docs/model.md states these floors for the bundled model (measured on 24 clips).
    m = held_out["model"]
    for key, floor in STATED.items():
        if key == "mpjpe_m":
            assert m[key] <= floor, (key, m[key])
        else:
            assert m[key] >= floor, (key, m[key])


def test_misshaped_model_refused_at_load():
    with pytest.raises(ModelLoadError) as e:
        Model.load(os.path.join(FIXTURES, "bad_window.onnx"))
    msg = str(e.value)
    assert "expected shape (batch, 2, 32, 90)" in msg
    assert "actual shape (dynamic, 2, 16, 90)" in msg


def test_missing_model_file_is_named():
    with pytest.raises(ModelLoadError, match="no_such_model.onnx"):
        Model.load("no_such_model.onnx")


def test_missing_onnxruntime_is_explained(monkeypatch):
    import importlib.util

    from wifi_densepose import model as model_mod

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match=r"pip install onnxruntime>=1\.32"):
        model_mod.onnxruntime_library()


def test_library_found_through_installed_package():
    from wifi_densepose.model import onnxruntime_library

    path = onnxruntime_library()
    assert os.path.basename(path).startswith("libonnxruntime")
    assert os.sep + "onnxruntime" + os.sep + "capi" + os.sep in path
