"""Receive chains whose gains step between packets: what the real Atheros and QCA9300
recordings show (``docs/sensing.md``, "Real Atheros and QCA9300 cards").

    .venv/bin/python benches/chain_gains.py            # about a minute
    .venv/bin/python benches/chain_gains.py --real-only   # seconds

The sensor reports motion ratios of hundreds on the two real recordings from these cards
(``../shared/data/csi/atheros_ath_csi_1.dat``, ``picoscenes_rx_by_qca9300.csi``: 0.9 s
each, nothing documented about the room). Per real multi-antenna recording (the same set
as ``benches/chain_steps.py``) and per simulated clip of each multi-antenna profile
(held-out still clips, seeds 700000+, whose chains have no gain steps), this prints:

- the packet spacing;
- how much one chain's power against the first chain's changes from one packet to the
  next (dB, median / 90th / 99th percentile over chain-packets);
- how much the *shape* of a chain's amplitude across subcarriers changes meanwhile (the
  1st percentile of consecutive packets' correlation, 1 = none): a body that changes a
  chain's power by decibels in milliseconds changes its shape too; a gain stage does not;
- the sensor's median motion ratio over all frames (1 = still), as read and with each
  chain scaled to unit power in every packet (an experiment, not what the sensor does).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import dsp, sensing, sim
from wifi_densepose import sensing_eval as se

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chain_steps import SHARED, real_recordings


def chain_gain_jumps_db(csi: np.ndarray) -> np.ndarray:
    """|change| between consecutive packets of each chain's power over the first chain's,
    dB, one value per (packet pair, transmit chain, chain after the first)."""
    power = (np.abs(csi) ** 2).mean(axis=3) + 1e-30
    ratio_db = 10 * np.log10(power[:, :, 1:] / power[:, :, :1])
    return np.abs(np.diff(ratio_db, axis=0)).ravel()


def shape_correlation(csi: np.ndarray) -> np.ndarray:
    """Correlation of each chain's amplitude profile with the previous packet's."""
    a = np.abs(csi)
    a = a / (np.linalg.norm(a, axis=3, keepdims=True) + 1e-30)
    return (a[1:] * a[:-1]).sum(axis=3).ravel()


def level_jumps_and_shapes(csi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per consecutive pair of frames: whether some receive chain's power against the
    chains' mean changed by 2.5 dB or more, and the lowest correlation of a chain's
    amplitude profile with its previous one."""
    power = (np.abs(csi) ** 2).mean(axis=(1, 3)) + 1e-30          # (n, n_rx)
    rel = 10 * np.log10(power)
    rel -= rel.mean(axis=1, keepdims=True)
    jump = (np.abs(np.diff(rel, axis=0)) >= 2.5).any(axis=1)
    prof = np.abs(csi).transpose(0, 2, 1, 3).reshape(len(csi), csi.shape[2], -1)
    prof = prof / (np.linalg.norm(prof, axis=2, keepdims=True) + 1e-30)
    return jump, (prof[1:] * prof[:-1]).sum(axis=2).min(axis=1)


def gain_step_counts(csi: np.ndarray, same_shape: float = 0.995) -> np.ndarray:
    """Frames in each 64 that step by the engine's rule (``src/sensing/gains.rs``): a level
    jump while every chain's profile kept a correlation of ``same_shape`` (the engine's
    0.995) with its previous one."""
    jump, shape = level_jumps_and_shapes(csi)
    step = (jump & (shape >= same_shape)).astype(int)
    return np.convolve(step, np.ones(64, int), mode="valid") if len(step) >= 64 else \
        np.array([step.sum()])


def per_chain_unit_power(csi: np.ndarray) -> np.ndarray:
    g = np.sqrt((np.abs(csi) ** 2).mean(axis=3, keepdims=True)) + 1e-30
    return (csi / g).astype(np.complex64)


def _shape_at_jumps(csi: np.ndarray, pct: float) -> float | None:
    jump, shape = level_jumps_and_shapes(csi)
    return float(np.percentile(shape[jump], pct)) if jump.any() else None


def row(name: str, csi: np.ndarray, ts: np.ndarray) -> dict:
    jumps = chain_gain_jumps_db(csi)
    raw = sensing.sense(csi, ts, align_chains=False)
    now = sensing.sense(csi, ts)
    flat = sensing.sense(per_chain_unit_power(csi), ts)
    held, _ = dsp.align_chains(csi)
    counts = gain_step_counts(csi)
    return {"name": name, "layout": "x".join(map(str, csi.shape[1:])),
            "spacing_ms": float(np.median(np.diff(ts)) * 1e3),
            "gain_jump_db": [float(v) for v in np.percentile(jumps, [50, 90, 99])],
            "shape_corr_p1": float(np.percentile(shape_correlation(csi), 1)),
            "gain_jump_db_after": [float(v) for v in
                                   np.percentile(chain_gain_jumps_db(held), [50, 90, 99])],
            "steps_per_64": [int(counts.min()), int(counts.max())],
            "shape_at_jumps_p5": _shape_at_jumps(csi, 5),
            "motion_ratio_median_unconditioned": float(np.nanmedian(raw["motion_ratio"])),
            "motion_ratio_median": float(np.nanmedian(now["motion_ratio"])),
            "motion_detected": float(np.mean(now["motion_detected"])),
            "motion_detected_unconditioned": float(np.mean(raw["motion_detected"])),
            "motion_ratio_median_unit_chains": float(np.nanmedian(flat["motion_ratio"]))}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def main() -> int:
    rows = []
    for name, _intel, _ in real_recordings():
        path = next(p for p in SHARED.rglob(name))
        rec = wdp.read_csi(path)
        ts = np.asarray(rec.timestamps)[rec.dominant_indices]
        rows.append(row(name, rec.csi_dominant(), ts))
    print("| recording | layout | spacing, ms | chain gain change, dB (p50 / p90 / p99), as "
          "read -> held | shape correlation, 1st pct | gain steps per 64 frames, fewest / most "
          "| shape correlation at level jumps, 5th pct | motion ratio (median), unconditioned / "
          "now / chains at unit power | motion detected, unconditioned -> now |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = " / ".join(f"{v:.2f}" for v in r["gain_jump_db"])
        h = " / ".join(f"{v:.2f}" for v in r["gain_jump_db_after"])
        print(f"| `{r['name']}` | {r['layout']} | {r['spacing_ms']:.2f} | {g} -> {h} | "
              f"{r['shape_corr_p1']:.4f} | {r['steps_per_64'][0]} / {r['steps_per_64'][1]} | "
              f"{_fmt(r['shape_at_jumps_p5'])} | "
              f"{r['motion_ratio_median_unconditioned']:.1f} / {r['motion_ratio_median']:.1f} / "
              f"{r['motion_ratio_median_unit_chains']:.1f} | "
              f"{r['motion_detected_unconditioned']:.2f} -> {r['motion_detected']:.2f} |")
    if "--real-only" not in sys.argv:
        simulated_days()
    return 0


def simulated_days(days: int = 24) -> None:
    """The simulator, whose chains never step: held-out days of 0-3 people (60 s each,
    seeds 700000+) on every multi-antenna profile; the most frames stepping in any 64, by
    the engine's shape rule and by a looser one, and where the level jumps are (a body's
    hard-edged shadow on one antenna), how much of the shape they keep."""
    worst: list[tuple[int, int, str, int]] = []
    shapes = []
    for device in ("intel5300", "intel5300_40", "atheros"):
        for i in range(days):
            spec = se.clip_scenario("daily", i, 60.0)
            csi = sim.generate(json.dumps(spec), seed=se.SEED_BASE + i, duration_s=60.0,
                               device=device)["csi"]
            worst.append((int(gain_step_counts(csi).max()),
                          int(gain_step_counts(csi, 0.9).max()), device, i))
            jump, shape = level_jumps_and_shapes(csi)
            shapes.extend(shape[jump].tolist())
    at_rule = max(w[0] for w in worst)
    loose = max(w[1] for w in worst)
    s = np.asarray(shapes)
    print(f"\nsimulated: {days} held-out days of 60 s on intel5300, intel5300_40 and atheros "
          f"({3 * days} sources): at most {at_rule} frames stepping in any 64 by the engine's "
          f"rule (a source steps at 16), {loose} at a 0.9 shape rule; {len(s)} level jumps, "
          f"their shape correlation median {np.median(s):.4f}, 95th percentile "
          f"{np.percentile(s, 95):.4f}, largest {s.max():.4f}" if len(s) else
          f"\nsimulated: at most {at_rule} frames stepping in any 64; no level jump")


if __name__ == "__main__":
    sys.exit(main())
