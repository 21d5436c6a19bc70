"""Your own recordings to a model live in the server: ``train`` and ``evaluate_labelled``.

::

    import wifi_densepose as wdp

    result = wdp.train("recordings/", "LABELS.csv", "mine.onnx", holdout_groups=["day2"])
    result.report["balanced_accuracy"], result.report["baseline_accuracy"]
    server = wdp.Server(model="mine.onnx")   # its classes come out as activity.type

``LABELS.csv`` has the columns ``path,label`` and optionally ``group`` (a session, subject
or room: splits hold whole groups out) and ``start_s,end_s`` (a labelled segment, in
seconds since the file's first frame; absent: the whole file). Any other column, a missing
file, an unreadable recording, an empty class or a bad segment is a
:class:`~wifi_densepose.LabelsError` naming the row and column.

What is learned: each recording is read with the project's readers and described, every
``hop_s`` seconds, by the engine's window features (``docs/model.md``, "Classifier
contract") — the very code a live environment runs, so training and serving cannot drift
apart. A small network (the features a model uses, standardized, then linear by default or
with one hidden layer) is fitted with numpy and written as ONNX with its class names, window and training record in
its metadata. The training extra (``pip install wifi-densepose[train]``) adds only
``onnx``, to write the file.

How a recording (or segment) gets its class: the mean of the class probabilities over the
windows whose middle lies inside it, then the most probable class. Segments shorter than
one window have no window and are left out, with a warning naming the row.

Why groups: windows of one session share its static channel, which alone identifies the
session; a random split of windows scores the session, not the activity. ``train`` and
``evaluate_labelled`` hold whole groups out and say so.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _native
from ._native import read_csi
from .errors import InvalidArgumentError, LabelsError

#: The window features' names, in order (the engine's ``sensing::window_features``).
FEATURE_NAMES: tuple[str, ...] = ()
#: The feature groups ``train(features=...)`` picks from.
FEATURE_GROUPS = ("level", "peak", "bands", "quarters", "eigen", "amplitude_angle")
#: The groups the default model uses: chosen by the ablation in docs/model.md (the
#: ``level`` group, absolute change over noise, moves with the setup between days).
DEFAULT_FEATURES = ("eigen", "amplitude_angle")
COLUMNS = ("path", "label", "group", "start_s", "end_s")
FALL_CLASSES = ("fall", "falling")

Progress = Callable[[str], None]


@dataclass
class LabelRow:
    """One row of LABELS.csv (``row`` counts the header as 1)."""

    row: int
    path: str
    label: str
    group: str
    start_s: float | None = None
    end_s: float | None = None

    @property
    def name(self) -> str:
        if self.start_s is None:
            return self.path
        return f"{self.path}[{self.start_s:g}-{self.end_s:g}s]"


def _reading(read_options: dict[str, Any] | None) -> dict[str, Any]:
    """``read_csi`` options for training and its end-to-end check: two-antenna Intel 5300
    frames in antenna order (the official reader leaves them in the card's RF-chain
    order, which changes from packet to packet; the live pipeline reorders every frame
    the same way), unless the caller says otherwise."""
    return {"antenna_order": True, **(read_options or {})}


@dataclass
class Example:
    """A labelled row and its window features (``features`` ``(windows, N)``)."""

    row: LabelRow
    features: np.ndarray
    #: The recording's main CSI layout (n_tx, n_rx, n_sub).
    layout: tuple[int, ...] = ()


@dataclass
class TrainResult:
    """What ``train`` made: the model file, its classes, and the held-out report (or None)."""

    path: str
    classes: list[str]
    windows: int
    recordings: int
    seconds: float
    steps: int
    report: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def read_labels(labels: str | os.PathLike[str], data: str | os.PathLike[str]) -> list[LabelRow]:
    """Reads and checks LABELS.csv; paths are relative to ``data``."""
    labels, data = os.fspath(labels), os.fspath(data)
    if not os.path.isfile(labels):
        raise LabelsError(f"no labels file {labels!r}")
    with open(labels, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise LabelsError("the labels file is empty: it needs a header `path,label`") from None
        # Other columns (the shared set's `bpm`, a note) are left unread, and said so: a
        # misspelt `group` would otherwise quietly make each file its own group.
        unread = [name for name in header if name not in COLUMNS]
        if unread:
            warnings.warn(
                f"{labels}: column(s) {', '.join(map(repr, unread))} not read; the columns "
                f"read are {', '.join(COLUMNS)}", UserWarning, stacklevel=2)
        for need in ("path", "label"):
            if need not in header:
                raise LabelsError(f"missing column {need!r}", row=1, column=need)
        if len(set(header)) != len(header):
            raise LabelsError(f"a column appears twice: {header}", row=1)
        if ("start_s" in header) != ("end_s" in header):
            raise LabelsError("start_s and end_s come together", row=1,
                              column="start_s" if "start_s" not in header else "end_s")
        rows = []
        for n, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise LabelsError(f"{len(values)} values for {len(header)} columns", row=n)
            cell = {k: v for k, v in zip(header, (v.strip() for v in values)) if k in COLUMNS}
            rows.append(_row(n, cell, data))
    if not rows:
        raise LabelsError("the labels file has no rows")
    return rows


def _row(n: int, cell: dict[str, str], data: str) -> LabelRow:
    path = cell["path"]
    if not path:
        raise LabelsError("empty path", row=n, column="path")
    full = os.path.join(data, path)
    if not os.path.isfile(full):
        raise LabelsError(f"no such file {full!r}", row=n, column="path")
    label = cell["label"]
    if not label:
        raise LabelsError("empty class", row=n, column="label")
    group = cell.get("group", "") or path  # no group: each file is its own
    start_s, end_s = cell.get("start_s", ""), cell.get("end_s", "")
    if bool(start_s) != bool(end_s):
        raise LabelsError("a segment needs both start_s and end_s", row=n,
                          column="end_s" if start_s else "start_s")
    if not start_s:
        return LabelRow(n, path, label, group)
    times = []
    for column, text in (("start_s", start_s), ("end_s", end_s)):
        try:
            v = float(text)
        except ValueError:
            raise LabelsError(f"{text!r} is not a number of seconds", row=n,
                              column=column) from None
        if not math.isfinite(v) or v < 0:
            raise LabelsError(f"{text!r} must be a finite number of seconds >= 0", row=n,
                              column=column)
        times.append(v)
    if times[1] <= times[0]:
        raise LabelsError(f"end_s ({times[1]:g}) must be after start_s ({times[0]:g})",
                          row=n, column="end_s")
    return LabelRow(n, path, label, group, times[0], times[1])


def window_features(recording: Any, window_s: float, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The engine's window features of a recording: ``(t, features)``, ``t`` the last
    packet time of each window, ``features`` ``(windows, N)`` float32. Mixed shapes: the
    recording's dominant shape (the live describer skips stray frames the same way)."""
    counts = recording.shape_counts if hasattr(recording, "shape_counts") else None
    if counts is not None and len(counts) > 1:
        csi = np.asarray(recording.csi_dominant())
        ts = np.asarray(recording.timestamps)[np.asarray(recording.dominant_indices)]
    else:
        csi = np.asarray(recording.csi)
        ts = np.asarray(recording.timestamps)
    if len(ts) == 0:
        return np.zeros(0), np.zeros((0, len(_names())), np.float32)
    out = _native.window_features(np.ascontiguousarray(csi, dtype=np.complex64),
                                  np.ascontiguousarray(ts, dtype=np.float64),
                                  float(window_s), float(hop_s))
    return out["t"], out["features"]


def _names() -> tuple[str, ...]:
    global FEATURE_NAMES
    if not FEATURE_NAMES:
        z = np.zeros((1, 1, 1, 4), np.complex64)
        FEATURE_NAMES = tuple(_native.window_features(z, np.zeros(1), 1.0, 0.5)["names"])
    return FEATURE_NAMES


def feature_indices(groups: Iterable[str]) -> list[int]:
    """Indices of the features in ``groups`` (each one of :data:`FEATURE_GROUPS`)."""
    groups = list(groups)
    for g in groups:
        if g not in FEATURE_GROUPS:
            raise InvalidArgumentError(f"unknown feature group {g!r}; known: {FEATURE_GROUPS}")
    if not groups:
        raise InvalidArgumentError("at least one feature group is needed")
    return [i for i, n in enumerate(_names()) if n.split(".")[0] in groups]


def load_examples(rows: Sequence[LabelRow], data: str | os.PathLike[str], *, window_s: float,
                  hop_s: float, read_options: dict[str, Any] | None = None,
                  progress: Progress | None = None) -> list[Example]:
    """Reads every recording once and cuts each row's windows (see the module docs)."""
    by_path: dict[str, list[LabelRow]] = {}
    for r in rows:
        by_path.setdefault(r.path, []).append(r)
    examples = []
    for i, (path, its_rows) in enumerate(by_path.items()):
        if progress:
            progress(f"reading {i + 1}/{len(by_path)}: {path}")
        full = os.path.join(os.fspath(data), path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a truncated tail is reported, not fatal
                rec = read_csi(full, **_reading(read_options))
        except (ValueError, OSError) as e:
            raise LabelsError(f"cannot read {full!r}: {e}", row=its_rows[0].row,
                              column="path") from e
        if len(rec) == 0:
            raise LabelsError(f"{full!r} holds no CSI frame", row=its_rows[0].row, column="path")
        t, x = window_features(rec, window_s, hop_s)
        layout = tuple(int(v) for v in rec.shapes[0]) if rec.shapes else ()
        t0 = float(np.asarray(rec.timestamps)[0])
        mid = t - t0 - window_s / 2
        for r in its_rows:
            keep = np.ones(len(t), bool) if r.start_s is None else (
                (mid >= r.start_s) & (mid <= (r.end_s or 0.0)))
            examples.append(Example(r, x[keep], layout))
    return examples


def _fit(x: np.ndarray, y: np.ndarray, classes: int, *, hidden: int, l2: float, steps: int,
         seed: int, deadline: float, progress: Progress | None,
         balanced: bool = False) -> tuple[list[np.ndarray], int]:
    """Softmax network (one hidden ReLU layer, or none) by full-batch Adam; stops at
    ``steps`` or the wall-clock ``deadline``. ``balanced``: each class weighs the same in
    the loss, however rare (a fall among hours of daily life)."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    if hidden:
        params = [rng.normal(0, 1 / np.sqrt(d), (d, hidden)), np.zeros(hidden),
                  rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes)), np.zeros(classes)]
    else:
        params = [np.zeros((d, classes)), np.zeros(classes)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    target = np.eye(classes)[y]
    counts = np.bincount(y, minlength=classes).astype(float)
    weight = (len(y) / (classes * np.maximum(counts, 1)))[y] if balanced else np.ones(len(y))
    weight = weight / weight.sum()
    lr, step = 0.01, 0
    for step in range(1, steps + 1):
        if hidden:
            h = np.maximum(x @ params[0] + params[1], 0)
            z = h @ params[2] + params[3]
        else:
            z = x @ params[0] + params[1]
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - target) * weight[:, None]
        if hidden:
            gh = (g @ params[2].T) * (h > 0)
            grads = [x.T @ gh + l2 * params[0], gh.sum(0), h.T @ g + l2 * params[2], g.sum(0)]
        else:
            grads = [x.T @ g + l2 * params[0], g.sum(0)]
        for i, gr in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr**2
            params[i] -= lr * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
        if progress and (step % 500 == 0 or step == steps):
            loss = -float(np.sum(weight * np.log(p[np.arange(len(y)), y] + 1e-12)))
            progress(f"step {step}/{steps}: training loss {loss:.3f}")
        if time.monotonic() > deadline:
            if progress:
                progress(f"the time budget ended at step {step}")
            break
    return params, step


def _export(path: str, params: list[np.ndarray], indices: list[int], mean: np.ndarray,
            scale: np.ndarray, metadata: dict[str, str]) -> None:
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ModuleNotFoundError(
            "writing the model needs the training extra: pip install 'wifi-densepose[train]' "
            "(it adds the onnx package)") from None
    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.asarray(indices, np.int64), "feature_index"),
        numpy_helper.from_array(mean.astype(f32), "feature_mean"),
        numpy_helper.from_array(scale.astype(f32), "feature_scale"),
    ]
    nodes = [
        helper.make_node("Gather", ["features", "feature_index"], ["picked"], axis=1),
        helper.make_node("Sub", ["picked", "feature_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "feature_scale"], ["x0"]),
    ]
    last = "x0"
    layers = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    for n, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w.astype(f32), f"w{n}"),
                  numpy_helper.from_array(b.astype(f32), f"b{n}")]
        nodes += [helper.make_node("MatMul", [last, f"w{n}"], [f"m{n}"]),
                  helper.make_node("Add", [f"m{n}", f"b{n}"], [f"z{n}"])]
        last = f"z{n}"
        if n < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [last], [f"h{n}"]))
            last = f"h{n}"
    nodes.append(helper.make_node("Softmax", [last], ["class_probs"], axis=1))
    n_in, n_out = len(_names()), layers[-1][1].shape[0]
    graph = helper.make_graph(
        nodes, "wifi_densepose_classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("class_probs", TensorProto.FLOAT, ["batch", n_out])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="wifi-densepose train")
    model.ir_version = 9  # ONNX Runtime 1.32 reads up to 11; 9 keeps older runtimes working
    for k, v in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, path)  # never a half-written model where the old one was


def _stderr(message: str) -> None:
    print(f"[train] {message}", file=sys.stderr, flush=True)


def _warn_of_confounds(usable: list[Example], classes: list[str],
                       held_out: list[LabelRow]) -> None:
    """Warnings for what trains without error and then misleads: several CSI layouts in one
    classifier (a class recorded on one card only is told by the card), and held-out
    classes the model never saw (recall 0 by construction)."""
    by_layout: dict[tuple[int, ...], set[str]] = {}
    for e in usable:
        by_layout.setdefault(e.layout, set()).add(e.row.label)
    if len(by_layout) > 1:
        parts = "; ".join(f"{'x'.join(map(str, k)) or '?'}: {', '.join(sorted(v))}"
                          for k, v in sorted(by_layout.items()))
        warnings.warn(f"recordings of {len(by_layout)} CSI layouts train one classifier "
                      f"({parts}): a class recorded on one layout only can be told by the "
                      "layout rather than the activity", UserWarning, stacklevel=3)
    unseen = sorted({r.label for r in held_out} - set(classes))
    if unseen:
        warnings.warn(f"held-out class(es) {', '.join(map(repr, unseen))} are in no training "
                      "row: the model cannot say them, so their recall is 0 by construction",
                      UserWarning, stacklevel=3)


def train(data: str | os.PathLike[str], labels: str | os.PathLike[str],
          out: str | os.PathLike[str], *, minutes: float = 5.0, seed: int = 0,
          holdout_groups: Sequence[str] = (), window_s: float = 1.0, hop_s: float = 0.25,
          features: Sequence[str] = DEFAULT_FEATURES, hidden: int = 0, l2: float = 0.01,
          steps: int = 2000, balanced: bool = False,
          read_options: dict[str, Any] | None = None,
          progress: Progress | bool | None = True) -> TrainResult:
    """Trains a classifier of LABELS.csv's classes on the recordings under ``data`` and
    writes it to ``out`` (ONNX). ``holdout_groups``: groups left out of training and
    scored (the result's ``report``, as :func:`evaluate_labelled` gives it).
    ``minutes`` bounds the fitting's wall-clock time; ``seed`` fixes everything else.
    ``balanced`` weighs every class the same in the loss (rare classes such as falls).
    ``read_options`` go to :func:`wifi_densepose.read_csi` (``nexmon_chip``...)."""
    started = time.monotonic()
    say: Progress | None = _stderr if progress is True else (progress or None)
    if not (math.isfinite(minutes) and minutes > 0):
        raise InvalidArgumentError(f"minutes must be a positive number, not {minutes}")
    if hidden < 0 or steps < 1 or not (math.isfinite(l2) and l2 >= 0):
        raise InvalidArgumentError("hidden >= 0, steps >= 1 and l2 >= 0 are needed")
    indices = feature_indices(features)
    rows = read_labels(labels, data)
    groups = {r.group for r in rows}
    for g in holdout_groups:
        if g not in groups:
            raise InvalidArgumentError(f"holdout group {g!r} is not in the labels; groups: "
                                       f"{sorted(groups)}")
    train_rows = [r for r in rows if r.group not in set(holdout_groups)]
    if not train_rows:
        raise InvalidArgumentError("every row is held out: nothing is left to train on")
    examples = load_examples(train_rows, data, window_s=window_s, hop_s=hop_s,
                             read_options=read_options, progress=say)
    usable = [e for e in examples if len(e.features)]
    for e in examples:
        if not len(e.features):
            warnings.warn(f"LABELS.csv row {e.row.row} ({e.row.name}) is shorter than one "
                          f"{window_s:g} s window: left out of training", stacklevel=2)
    classes = sorted({e.row.label for e in usable})
    if len(classes) < 2:
        raise InvalidArgumentError(
            f"training needs at least two classes with a window each; found {classes}")
    _warn_of_confounds(usable, classes, [r for r in rows if r.group in set(holdout_groups)])
    x = np.vstack([e.features for e in usable]).astype(np.float64)[:, indices]
    y = np.concatenate([[classes.index(e.row.label)] * len(e.features) for e in usable])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    if say:
        say(f"{len(x)} windows from {len(usable)} recordings/segments, classes {classes}")
    deadline = started + minutes * 60
    params, done = _fit((x - mean) / scale, y, len(classes), hidden=hidden, l2=l2, steps=steps,
                        seed=seed, deadline=deadline, progress=say, balanced=balanced)
    counts = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    recording_counts = {c: sum(1 for e in usable if e.row.label == c) for c in classes}
    digest = hashlib.sha256(b"".join(p.astype(np.float32).tobytes() for p in params))
    out = os.fspath(out)
    stem = os.path.splitext(os.path.basename(out))[0]
    metadata = {
        "wifi_densepose.version": f"{stem}-{digest.hexdigest()[:8]}",
        "wifi_densepose.kind": "classifier",
        "wifi_densepose.classes": json.dumps(classes),
        "wifi_densepose.feature_set": "wdp-window-v1",
        "wifi_densepose.window_s": repr(float(window_s)),
        "wifi_densepose.hop_s": repr(float(hop_s)),
        "wifi_densepose.features": ",".join(features),
        "wifi_densepose.train_counts": json.dumps(recording_counts),
        "wifi_densepose.train_windows": json.dumps(counts),
        "wifi_densepose.train_groups": json.dumps(sorted({e.row.group for e in usable})),
        "wifi_densepose.holdout_groups": json.dumps(sorted(holdout_groups)),
        "wifi_densepose.train_seed": str(seed),
        "wifi_densepose.train_steps": str(done),
        "wifi_densepose.hidden": str(hidden),
        "wifi_densepose.balanced": str(balanced).lower(),
    }
    _export(out, params, indices, mean, scale, metadata)
    seconds = time.monotonic() - started
    if say:
        say(f"wrote {out} ({os.path.getsize(out)} bytes) in {seconds:.1f} s")
    report = None
    if holdout_groups:
        report = evaluate_labelled(out, data, labels, groups=holdout_groups,
                                   read_options=read_options, progress=say)
        if say:
            say(f"held-out groups {list(holdout_groups)}: accuracy {report['accuracy']:.3f} "
                f"(baseline {report['baseline_accuracy']:.3f}), balanced accuracy "
                f"{report['balanced_accuracy']:.3f}")
    return TrainResult(out, classes, len(x), len(usable), seconds, done, report, metadata)


def _model(model: Any) -> Any:
    from .model import Model

    if isinstance(model, Model):
        return model
    return Model.load(os.fspath(model))


def evaluate_labelled(model: Any, data: str | os.PathLike[str], labels: str | os.PathLike[str],
                      *, groups: Sequence[str] | None = None, end_to_end: bool = False,
                      read_options: dict[str, Any] | None = None,
                      progress: Progress | bool | None = None) -> dict[str, Any]:
    """Scores a classifier on labelled recordings: each recording's (or segment's) class
    as the module docs say, beside the majority-class baseline. ``groups``: only rows of
    those groups are scored (name the groups training held out). ``end_to_end``: also
    run every recording through :func:`wifi_densepose.analyze` (the server's code path)
    and score the class its pose_data carried, and ``fall_detected`` for fall classes.

    Returns ``accuracy``, ``balanced_accuracy``, ``baseline_accuracy`` (always the
    training set's most common class; ``baseline_class``), ``best_constant_accuracy``
    (the scored set's most common class), ``per_class`` ``{label: {recall, precision,
    support}}``, ``confusion`` (rows: truth, columns: prediction, both in ``labels``
    order), ``labels``, ``predictions`` (one per scored row) and ``unscored`` (rows too
    short for one window), ``window_accuracy`` (every window on its own). Rows labelled
    ``fall``/``falling`` always get the end-to-end ``fall_recall``/``fall_precision``."""
    say: Progress | None = _stderr if progress is True else (progress or None)
    m = _model(model)
    if m.kind != "classifier":
        raise InvalidArgumentError(
            f"{m.version} is a pose model; evaluate_labelled scores classifiers "
            "(wifi-densepose train); the pose model is scored by `wifi-densepose evaluate`")
    window_s, hop_s = m.window or (1.0, 0.25)  # a classifier always has its window
    meta_counts = _metadata(m).get("wifi_densepose.train_counts")
    rows = read_labels(labels, data)
    if groups:
        known = {r.group for r in rows}
        for g in groups:
            if g not in known:
                raise InvalidArgumentError(f"group {g!r} is not in the labels; groups: "
                                           f"{sorted(known)}")
        rows = [r for r in rows if r.group in set(groups)]
    examples = load_examples(rows, data, window_s=window_s, hop_s=hop_s,
                             read_options=read_options, progress=say)
    classes = list(m.classes)
    predictions, unscored = [], []
    window_hits = window_count = 0
    for e in examples:
        if not len(e.features):
            unscored.append({"row": e.row.row, "name": e.row.name, "label": e.row.label})
            continue
        per_window = m.classify(e.features)
        window_hits += int(sum(classes[i] == e.row.label for i in per_window.argmax(1)))
        window_count += len(per_window)
        probs = per_window.mean(0)
        best = int(np.argmax(probs))
        predictions.append({"row": e.row.row, "name": e.row.name, "group": e.row.group,
                            "label": e.row.label, "predicted": classes[best],
                            "confidence": round(float(probs[best]), 4),
                            "windows": len(e.features)})
    if not predictions:
        raise InvalidArgumentError("no row has a whole window to score")
    report = _scores([p["label"] for p in predictions], [p["predicted"] for p in predictions],
                     classes)
    train_counts = json.loads(meta_counts) if meta_counts else None
    truth = [p["label"] for p in predictions]
    if train_counts:
        baseline_class = max(sorted(train_counts), key=lambda c: train_counts[c])
    else:
        baseline_class = max(sorted(set(truth)), key=truth.count)
    most = max(sorted(set(truth)), key=truth.count)
    report.update({
        "model_version": m.version,
        "scored": len(predictions),
        "baseline_class": baseline_class,
        "baseline_accuracy": round(truth.count(baseline_class) / len(truth), 4),
        "best_constant_accuracy": round(truth.count(most) / len(truth), 4),
        "window_accuracy": round(window_hits / max(window_count, 1), 4),
        "windows": window_count,
        "baseline_balanced_accuracy": round(1 / len(set(truth)), 4),
        "groups": sorted({p["group"] for p in predictions}),
        "predictions": predictions,
        "unscored": unscored,
        "window_s": window_s,
        "hop_s": hop_s,
    })
    # Fall classes are events: their figure is the pipeline's fall_detected, end to end.
    if end_to_end or any(r.label.lower() in FALL_CLASSES for r in rows):
        report["end_to_end"] = _end_to_end(m, rows, data, read_options, say)
    return report


def _metadata(m: Any) -> dict[str, str]:
    """The ONNX metadata of a loaded model, read with onnxruntime (always installed)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    source = m._native.source
    if not os.path.isfile(source):
        return {}
    return dict(ort.InferenceSession(source, providers=["CPUExecutionProvider"])
                .get_modelmeta().custom_metadata_map)


def _scores(truth: list[str], predicted: list[str], classes: list[str]) -> dict[str, Any]:
    labels = sorted(set(truth) | set(classes))
    index = {c: i for i, c in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), int)
    for t, p in zip(truth, predicted):
        confusion[index[t], index[p]] += 1
    per_class = {}
    recalls: list[float] = []
    for c, i in index.items():
        support = int(confusion[i].sum())
        called = int(confusion[:, i].sum())
        recall = confusion[i, i] / support if support else None
        precision = confusion[i, i] / called if called else None
        per_class[c] = {"recall": None if recall is None else round(float(recall), 4),
                        "precision": None if precision is None else round(float(precision), 4),
                        "support": support}
        if support:
            recalls.append(float(recall or 0.0))
    accuracy = float(np.trace(confusion)) / max(len(truth), 1)
    return {"accuracy": round(accuracy, 4),
            "balanced_accuracy": round(float(np.mean(recalls)), 4),
            "per_class": per_class, "confusion": confusion.tolist(), "labels": labels}


def _end_to_end(m: Any, rows: Sequence[LabelRow], data: str | os.PathLike[str],
                read_options: dict[str, Any] | None, say: Progress | None) -> dict[str, Any]:
    """Every recording through ``analyze`` (the server's code path): a row's class is the
    one its pose_data frames carried most often (``metadata.classification``), and a fall
    row is found when a ``fall_detected`` falls inside it."""
    from .analyze import analyze

    by_path: dict[str, list[LabelRow]] = {}
    for r in rows:
        by_path.setdefault(r.path, []).append(r)
    truth, predicted, falls = [], [], {"tp": 0, "fn": 0, "fp": 0}
    for i, (path, its_rows) in enumerate(by_path.items()):
        if say:
            say(f"end to end {i + 1}/{len(by_path)}: {path}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = read_csi(os.path.join(os.fspath(data), path), **_reading(read_options))
        events = analyze(rec, model=m)
        t0 = float(np.asarray(rec.timestamps)[0])
        frames = [(e["data"]["metadata"].get("source_time", 0.0) - t0,
                   e["data"]["metadata"].get("classification", {}).get("type"))
                  for e in events if e["type"] == "pose_data"]
        fall_times = [e["data"].get("details", {}).get("source_time", 0.0) - t0
                      for e in events if e["type"] == "activity_event"
                      and e["data"].get("event_type") == "fall_detected"]
        for r in its_rows:
            lo = -math.inf if r.start_s is None else r.start_s
            hi = math.inf if r.end_s is None else r.end_s
            seen = [c for t, c in frames if c is not None and lo <= t <= hi]
            if seen:
                truth.append(r.label)
                predicted.append(max(sorted(set(seen)), key=seen.count))
            fell = any(lo <= t <= hi for t in fall_times)
            if r.label.lower() in FALL_CLASSES:
                falls["tp" if fell else "fn"] += 1
            elif fell:
                falls["fp"] += 1
    out: dict[str, Any] = {"scored": len(truth)}
    if truth:
        out.update(_scores(truth, predicted, list(m.classes)))
    if falls["tp"] + falls["fn"]:
        called = falls["tp"] + falls["fp"]
        out["fall_recall"] = round(falls["tp"] / (falls["tp"] + falls["fn"]), 4)
        out["fall_precision"] = round(falls["tp"] / called, 4) if called else None
    return out
