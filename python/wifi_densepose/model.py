"""The pose model, run by ONNX Runtime through the Rust engine (see ``docs/model.md``).

::

    from wifi_densepose.model import Model
    from wifi_densepose.features import windows_from_recording

    model = Model.default()                      # the bundled model, no configuration
    x, _ = windows_from_recording(data["csi"])   # (B, 2, 32, 90) float32
    out = model.predict(x)                       # dict of arrays, see predict()
    model.version                                # "wdp-sim-cnn-0.2.0"

``Model.load(path)`` loads your own ONNX model; one that does not fit the contract is
refused with :class:`ModelLoadError` naming the expected and actual shapes.

The ONNX Runtime library is the one inside the installed ``onnxruntime`` wheel; nothing
needs to be configured. A clear :class:`ModelLoadError` says what to install when it is
missing or too old.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any

import numpy as np

from . import _native
from .errors import InvalidArgumentError

ModelLoadError = _native.ModelLoadError
#: The most intra-op threads a model may ask ONNX Runtime for.
MAX_THREADS = 256
#: The activity classes of the ``activity`` output, in order (defined once, in the engine).
ACTIVITIES: tuple[str, ...] = _native.ACTIVITIES
DENSE_PARTS = 25  # background + the 24 DensePose parts
PATCH = 8  # cells on a side of a slot's dense-pose patch
MIN_ORT = (1, 31)
DEFAULT_MODEL = os.path.join(os.path.dirname(__file__), "models", "default.onnx")
_runtime_ready = False


def onnxruntime_library() -> str:
    """Path of the ONNX Runtime shared library shipped in the ``onnxruntime`` wheel."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "ONNX Runtime is not installed: `pip install onnxruntime>=1.32` "
            "(or onnxruntime-gpu) to run the pose model"
        )
    root = next(iter(spec.submodule_search_locations))
    capi = os.path.join(root, "capi")
    names = ("libonnxruntime.so*", "libonnxruntime*.dylib", "onnxruntime.dll")
    found = sorted(p for n in names for p in glob.glob(os.path.join(capi, n)))
    found = [p for p in found if "providers" not in os.path.basename(p)]
    if not found:
        raise ModelLoadError(f"no ONNX Runtime library found in {capi}; reinstall onnxruntime")
    return max(found, key=len)


def _ensure_runtime() -> None:
    global _runtime_ready
    if not _runtime_ready:
        _native.model_init_runtime(onnxruntime_library())
        _runtime_ready = True


class Model:
    """A pose model that fits the contract of ``docs/model.md``."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int = 1, device: str = "cpu") -> Model:
        """Loads an ONNX model file; refuses one that does not fit the contract.

        ``device``: ``"cpu"``, or ``"cuda"`` / ``"cuda:N"`` for ONNX Runtime's CUDA
        execution provider, which needs the ``onnxruntime-gpu`` wheel installed in place of
        ``onnxruntime`` (without it, :class:`ModelLoadError` says so; there is no silent
        fallback to the CPU). ``threads``: ONNX Runtime's intra-op threads (0: its default).
        """
        _ensure_runtime()
        if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
            # Thousands of intra-op threads took minutes to start on a 2-core machine.
            raise InvalidArgumentError(f"threads must be 0 (ONNX Runtime's default) to {MAX_THREADS}, "
                                       f"not {threads!r}")
        return cls(_native.NativeModel.load(os.fspath(path), threads, device))

    @classmethod
    def default(cls, *, threads: int = 1, device: str = "cpu") -> Model:
        """The model bundled in the wheel (trained on simulated CSI, see ``docs/model.md``)."""
        return cls.load(DEFAULT_MODEL, threads=threads, device=device)

    @property
    def device(self) -> str:
        """Where the model runs: ``"cpu"`` or ``"cuda:N"``."""
        return self._native.device

    @property
    def version(self) -> str:
        """The version string from the model's metadata (``wifi_densepose.version``)."""
        return self._native.version

    @property
    def has_dense_pose(self) -> bool:
        """Whether the model gives each slot a dense-pose patch (``dense_part``, ``dense_uv``)."""
        return self._native.has_dense_pose

    @property
    def slots(self) -> int:
        """Person slots ``K`` per window."""
        return self._native.slots

    @property
    def kind(self) -> str:
        """``"pose"`` (the bundled model's contract) or ``"classifier"`` (``wifi-densepose train``)."""
        return self._native.kind

    @property
    def classes(self) -> list[str]:
        """A classifier's class names, in the order of its probabilities (empty for pose)."""
        return self._native.classes

    @property
    def window(self) -> tuple[float, float] | None:
        """A classifier's ``(window_s, hop_s)``: the seconds each answer describes and between answers."""
        return self._native.window

    def classify(self, features: np.ndarray) -> np.ndarray:
        """A classifier on window features ``(B, N)`` (:func:`wifi_densepose.train.window_features`):
        ``(B, len(classes))`` probabilities."""
        return self._native.classify(np.ascontiguousarray(features, dtype=np.float32))

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Runs a batch of windows ``(B, 2, 32, 90)`` (or one ``(2, 32, 90)``) in one call.

        Returns ``presence`` ``(B, K)``, ``keypoints`` ``(B, K, 17, 3)`` (u, v, confidence),
        ``boxes`` ``(B, K, 4)`` and ``activity`` ``(B, K, 5)`` (probabilities over
        :data:`ACTIVITIES`), all float32; with dense pose (:attr:`has_dense_pose`) also
        ``dense_part`` ``(B, K, 25, 8, 8)`` (probabilities over background and the 24
        parts) and ``dense_uv`` ``(B, K, 2, 8, 8)``: each slot's patch of the room's
        32 x 32 top-down raster, centred on the slot's mid-hip cell
        (:func:`wifi_densepose.simdata.patch_origin`).
        """
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        out = self._native.predict(x)
        b, k = out["batch"], out["k"]
        result = {
            "presence": out["presence"].reshape(b, k),
            "keypoints": out["keypoints"].reshape(b, k, 17, 3),
            "boxes": out["boxes"].reshape(b, k, 4),
            "activity": out["activity"].reshape(b, k, len(ACTIVITIES)),
        }
        if "dense_part" in out:
            result["dense_part"] = out["dense_part"].reshape(b, k, DENSE_PARTS, PATCH, PATCH)
            result["dense_uv"] = out["dense_uv"].reshape(b, k, 2, PATCH, PATCH)
        return result

    def __repr__(self) -> str:
        if self.kind == "classifier":
            return f"Model(version={self.version!r}, classes={self.classes!r})"
        return f"Model(version={self.version!r}, slots={self.slots})"


__all__ = ["ACTIVITIES", "Model", "ModelLoadError", "onnxruntime_library"]
