"""``wifi-densepose analyze``: the live pipeline over one recording, from the shell.

Runs :func:`wifi_densepose.analyze` (the server's own code path: sensor, model, tracker,
analytics) over a recording in any format :func:`wifi_densepose.read_csi` reads, or a
``wifi-densepose simulate`` ``.npz``, and prints what a researcher checks first: how much
of the time someone was reported, moving, breathing at what rate, how many people, doing
what, which events, and a timeline. ``--out`` also writes every message the server would
have published, one JSON object per line (``{"type", "timestamp", "data"}``), for your
own scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

import numpy as np

from .errors import InvalidArgumentError

#: Message types as the server publishes them (``--types`` picks among them).
MESSAGE_TYPES = ("pose_data", "pose_data_trajectory", "tracking_update", "activity_event",
                 "occupancy_update", "hardware_event", "system_event")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("recording", help="a CSI recording (.dat, .pcap, .csv, .csi) or a "
                                      "wifi-densepose simulate .npz")
    ap.add_argument("--format", help="the recording's format (default: detected)")
    ap.add_argument("--nexmon-chip", help="bcm4339, bcm4358, bcm43455c0 or bcm4366c0, where "
                                          "the capture does not tell")
    ap.add_argument("--device", help="the CSI's device profile, as add_environment takes it "
                                     "(default: from the frames; a simulated run's own)")
    ap.add_argument("--room", nargs=2, type=float, metavar=("WIDTH", "DEPTH"),
                    help="the floor in metres (default: a simulated run's room, else 6 x 5)")
    ap.add_argument("--placement", metavar="JSON|FILE",
                    help="where the link's devices are: JSON text or a .json file with "
                         "tx_position, rx_position (x, y, z in metres) and optionally "
                         "tx_axis, rx_axis, antenna_spacing_m, room_height; needs --device")
    ap.add_argument("--calibration", metavar="FILE",
                    help="the empty room's calibration (wifi-densepose calibrate --out FILE)")
    ap.add_argument("--model", default="default",
                    help="'default' (the bundled model), 'none' (the sensor alone) or an "
                         "ONNX file fitting docs/model.md's contract")
    ap.add_argument("--out", metavar="FILE",
                    help="also write the messages as JSON Lines to FILE ('-': stdout, the "
                         "summary then goes to stderr)")
    ap.add_argument("--types", metavar="T,T",
                    help="with --out: only these message types (comma-separated; "
                         f"of {', '.join(MESSAGE_TYPES)})")
    ap.add_argument("--segment", type=float, default=10.0, metavar="S",
                    help="the timeline's step in seconds of the recording (default 10; 0: "
                         "no timeline)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _placement(text: str) -> dict[str, Any]:
    raw = text
    if not text.lstrip().startswith("{"):
        try:
            with open(text) as f:
                raw = f.read()
        except OSError as e:
            raise InvalidArgumentError(f"--placement: neither JSON nor a readable file: {e}") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InvalidArgumentError(f"--placement: not JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError("--placement must be a JSON object")
    return value


def _calibration(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            value = json.load(f)
    except OSError as e:
        raise InvalidArgumentError(f"--calibration: {e}") from None
    except json.JSONDecodeError as e:
        raise InvalidArgumentError(f"--calibration {path}: not JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"--calibration {path}: not a calibration (a JSON object)")
    return value


def _types(text: str | None) -> set[str] | None:
    if text is None:
        return None
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    unknown = sorted(wanted - set(MESSAGE_TYPES))
    if unknown or not wanted:
        raise InvalidArgumentError(f"--types: unknown {unknown or 'empty list'}; "
                                   f"known: {', '.join(MESSAGE_TYPES)}")
    return wanted


def _source(a: argparse.Namespace) -> tuple[Any, str]:
    """What analyze reads, and a line saying what it is."""
    from . import read_csi, sim

    if a.recording.endswith(".npz"):
        run = sim.load(a.recording)
        links = [run] if "csi" in run else list(run.get("nodes") or [])
        if not links:
            raise InvalidArgumentError(f"{a.recording}: no CSI in it")
        shapes = sorted({"x".join(map(str, np.shape(link["csi"])[1:])) for link in links})
        frames = sum(len(link["csi"]) for link in links)
        nodes = f" from {len(links)} nodes" if "nodes" in run else ""
        devices = sorted({str(link.get("device", "simulated")) for link in links})
        return run, (f"{frames} simulated frames of {'/'.join(shapes)} CSI{nodes} "
                     f"({', '.join(devices)})")
    options: dict[str, Any] = {}
    if a.format:
        options["format"] = a.format
    if a.nexmon_chip:
        options["nexmon_chip"] = a.nexmon_chip
    rec = read_csi(a.recording, **options)
    if len(rec) == 0:
        raise InvalidArgumentError(f"{a.recording}: the recording holds no frames")
    layouts = ", ".join("x".join(map(str, s)) for s in rec.shapes)
    return rec, f"{len(rec)} frames of {layouts} CSI ({rec.format})"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _most(counter: Counter[str], n: int = 4) -> str:
    total = sum(counter.values())
    return ", ".join(f"{k} {_pct(v, total)}" for k, v in counter.most_common(n)) or "-"


def _frame_facts(poses: list[dict[str, Any]]) -> list[tuple[float, int, bool, list[str], float]]:
    """Per pose_data frame: source time, people, motion, their activities, the first
    person's breathing rate (NaN when none)."""
    facts = []
    for data in poses:
        meta = data.get("metadata") or {}
        persons = data.get("persons") or []
        rate = next((p["breathing_rate_bpm"] for p in persons
                     if p.get("breathing_rate_bpm") is not None), float("nan"))
        activities = [(p.get("activity") or {}).get("type") or "unknown" for p in persons]
        facts.append((float(meta.get("source_time", 0.0)), len(persons),
                      bool(meta.get("motion_detected")), activities, float(rate)))
    return facts


def _fall_time(fall: dict[str, Any]) -> str:
    """When a fall_detected says the fall was: the impact (tracker's detector) or the
    frame's source time (a classifier's)."""
    details = fall.get("details") or {}
    if "impact_time" in details:
        return f"impact at {details['impact_time']}"
    if "source_time" in details:
        return f"at {details['source_time']} s"
    return "at an unstated time"


def summary(messages: list[dict[str, Any]], what: str, segment_s: float) -> str:
    """The text ``analyze`` prints: the whole run, then its timeline."""
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]
    facts = _frame_facts(poses)
    n = len(facts)
    lines = [what]
    model = {str(v) for p in poses
             if (v := (p.get("metadata") or {}).get("model_version")) is not None}
    lines.append(f"  pose_data frames     {n}" + (f" (model {', '.join(sorted(model))})"
                                                  if model else ""))
    if n:
        t0 = facts[0][0]
        span = facts[-1][0] - t0
        rates = np.array([f[4] for f in facts])
        with_rate = np.isfinite(rates)
        people = Counter(f[1] for f in facts)
        lines += [
            f"  span                 {span:.1f} s of the recording's clock (from {t0:.3f} s)",
            f"  someone reported     {_pct(sum(f[1] > 0 for f in facts), n)} of frames",
            f"  motion detected      {_pct(sum(f[2] for f in facts), n)} of frames",
            "  breathing rate       " + (
                f"{np.median(rates[with_rate]):.1f} bpm median, in {_pct(int(with_rate.sum()), n)}"
                " of frames" if with_rate.any() else "none measured"),
            "  people per frame     " + ", ".join(f"{k}: {_pct(v, n)}"
                                                 for k, v in sorted(people.items())),
            "  activities           " + _most(Counter(a for f in facts for a in f[3]), 5),
        ]
    events: Counter[str] = Counter()
    falls = []
    warnings: Counter[str] = Counter()
    for m in messages:
        if m["type"] in ("activity_event", "hardware_event", "system_event", "tracking_update"):
            data = m["data"]
            name = data.get("event_type") or data.get("event") or "?"
            events[name] += 1
            if name == "fall_detected":
                falls.append(data)
            if data.get("severity") in ("warning", "error", "critical") and data.get("message"):
                warnings[f"{data['severity']}: {name}: {data['message']}"] += 1
    lines.append("  events               " + (", ".join(f"{k} {v}" for k, v in
                                                      sorted(events.items())) or "none"))
    lines.append(f"  falls detected       {len(falls)}" + "".join(
        f"\n    {_fall_time(f)}, confidence {f.get('confidence', '?')}" for f in falls[:20]))
    lines += [f"  {w}" + (f" (x{k})" if k > 1 else "") for w, k in warnings.most_common(10)]
    if n and segment_s > 0:
        lines.append(f"timeline ({segment_s:g} s steps, seconds from the first frame)")
        lines.append("  |  from s |    to s | someone | motion | people | activity | breathing bpm |")
        lines.append("  |---|---|---|---|---|---|---|")
        t0 = facts[0][0]
        edges = np.arange(0.0, facts[-1][0] - t0 + segment_s, segment_s)
        times = np.array([f[0] for f in facts]) - t0
        for lo in edges:
            sel = [facts[i] for i in np.flatnonzero((times >= lo) & (times < lo + segment_s))]
            if not sel:
                continue
            k = len(sel)
            acts = Counter(a for f in sel for a in f[3])
            rates = np.array([f[4] for f in sel])
            rate = f"{np.median(rates[np.isfinite(rates)]):.1f}" if np.isfinite(rates).any() else "-"
            lines.append(
                f"  | {lo:7.1f} | {lo + segment_s:7.1f} | {_pct(sum(f[1] > 0 for f in sel), k):>7} "
                f"| {_pct(sum(f[2] for f in sel), k):>6} | {max(f[1] for f in sel):>6} "
                f"| {acts.most_common(1)[0][0] if acts else '-'} | {rate} |")
    return "\n".join(lines)


def _write_lines(messages: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for m in messages:
        out.write(json.dumps(m, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


def run(a: argparse.Namespace) -> int:
    from . import WiFiDensePoseError, analyze

    try:
        wanted = _types(a.types)
        if wanted is not None and not a.out:
            raise InvalidArgumentError("--types needs --out")
        if a.segment < 0 or not np.isfinite(a.segment):
            raise InvalidArgumentError("--segment must be a number of seconds, 0 or more")
        source, what = _source(a)
        kwargs: dict[str, Any] = {"progress": not a.quiet}
        if a.device:
            kwargs["device"] = a.device
        if a.room:
            kwargs["room"] = tuple(a.room)
        if a.placement:
            kwargs["placement"] = _placement(a.placement)
        if a.calibration:
            kwargs["calibration"] = _calibration(a.calibration)
        model = a.model
        kwargs["model"] = None if model == "none" else model
        messages = analyze(source, **kwargs)
    except (WiFiDensePoseError, OSError) as e:
        print(f"wifi-densepose analyze: {e}", file=sys.stderr)
        return 1
    report_to = sys.stdout
    if a.out:
        chosen = [m for m in messages if wanted is None or m["type"] in wanted]
        if a.out == "-":
            _write_lines(chosen, sys.stdout)
            sys.stdout.flush()
            report_to = sys.stderr
        else:
            tmp = f"{a.out}.tmp"
            with open(tmp, "w") as f:
                count = _write_lines(chosen, f)
            os.replace(tmp, a.out)
            print(f"wrote {count} messages to {a.out}", file=sys.stderr)
    print(summary(messages, f"{a.recording}: {what}", a.segment), file=report_to, flush=True)
    return 0
