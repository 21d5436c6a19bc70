"""How the breathing rate's frequency is chosen on a 3-antenna link: the choices behind
``src/sensing/breathing_line.rs``, measured in numpy on the tuning seeds.

A standing body's sway is broadband, a breathing line is one frequency
(``docs/sensing.md``, "Standing people: breathing beneath sway"). For each still clip of
``sensing_eval.clip_scenario`` (seeds from ``--seed-base``, 600000 by default: the tuning
seeds; Intel 5300 3x3), the last 25.6 s window's block features (antenna-pair products
with the chains' quarter turns taken out, neighbouring subcarriers averaged in pairs, 0.1 s
blocks, as the sensor forms them) give a rate each way:

- ``summed``: the strongest local maximum of every feature's power spectrum, summed;
- ``components``: the four leading eigenvectors of the band's cross-spectral matrix, each
  searched for a line, the line with the largest share of its component's band power
  (the sensor's way until 2026-12-07);
- ``nulled K``: every band bin a candidate, scored by the power left in it once the K
  strongest directions of the band's other bins (more than ``--guard`` bins away) are
  projected out; the best candidate's residual searched on the padded spectrum within 1.5
  bins (the sensor's way since, with K = 4 and a guard of 2).

A rate within 1 bpm of the simulator's truth counts as right; the share right is printed
for all still people, standing ones and sitting or lying ones. This scores one window per
clip, the last; the sensor's own figures (``python -m wifi_densepose.sensing_eval``) score
every 30 s window, and gain less (the estimate of a standing person drifts as the window
slides).

    python benches/breathing_directions.py                      # 24 clips, about 2 minutes
    python benches/breathing_directions.py --seed-base 600024 --guard 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from wifi_densepose import sim
from wifi_densepose.dsp import align_chains
from wifi_densepose.sensing_eval import clip_scenario

BAND = (0.1, 0.7)
BLOCK_S = 0.1
WINDOW = 256
N_FFT = 1024
DIRECTIONS = (1, 2, 3, 4, 6)


def features(csi: np.ndarray) -> np.ndarray:
    """Antenna-pair products against the first receive chain, per transmit chain, after
    the engine's own chain aligner (:func:`wifi_densepose.dsp.align_chains`, the card's
    quarter-turn steps out); neighbouring subcarriers averaged in pairs (the sensor's
    ``pair_group``)."""
    csi, _ = align_chains(csi.astype(np.complex64))
    ref = csi[:, :, :1, :]
    products = csi[:, :, 1:, :] * np.conj(ref) / np.mean(np.abs(ref) ** 2)
    f = products.reshape(csi.shape[0], -1)
    return f.reshape(f.shape[0], -1, 2).mean(-1)


def blocks(ts: np.ndarray, f: np.ndarray) -> np.ndarray:
    idx = np.floor((ts - ts[0]) / BLOCK_S).astype(int)
    sums = np.zeros((idx.max() + 1, f.shape[1]), complex)
    np.add.at(sums, idx, f)
    return sums / np.maximum(np.bincount(idx), 1)[:, None]


def spectrum(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Each feature detrended, Hann-windowed, transformed: ``(n_fft, features)``."""
    n = x.shape[0]
    i = np.arange(n) - (n - 1) / 2
    x = x - x.mean(0) - np.outer(i, (x * i[:, None]).sum(0) / (i**2).sum())
    w = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
    return np.fft.fft(x * w[:, None], n_fft, axis=0)


def fold(p: np.ndarray) -> np.ndarray:
    n = len(p)
    return np.concatenate([[p[0]], p[1 : n // 2] + p[n - 1 : n // 2 : -1], [p[n // 2]]])


def interpolated(p: np.ndarray, k: int) -> float:
    a, b, c = p[k - 1], p[k], p[k + 1]
    den = a - 2 * b + c
    offset = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den else 0.0
    return 60 * (k + offset) / (N_FFT * BLOCK_S)


def strongest_line(p: np.ndarray) -> tuple[float, float]:
    """(bpm, share of the band's power) of the strongest local maximum inside the band."""
    df = 1 / (N_FFT * BLOCK_S)
    lo, hi = int(np.ceil(BAND[0] / df)), int(BAND[1] / df)
    peaks = [k for k in range(lo + 1, hi) if p[k] >= p[k - 1] and p[k] >= p[k + 1]]
    if not peaks:
        return float("nan"), 0.0
    k = max(peaks, key=lambda k: p[k])
    return interpolated(p, k), p[k] / p[lo : hi + 1].sum()


def band_bins(n: int) -> list[int]:
    df = 1 / (n * BLOCK_S)
    return [k for k in range(1, n // 2) if BAND[0] <= k * df <= BAND[1]]


def components_rate(x: np.ndarray, padded: np.ndarray) -> float:
    n = x.shape[0]
    unpadded = spectrum(x, n)
    rows = unpadded[band_bins(n) + [n - k for k in band_bins(n)]]
    _, vectors = np.linalg.eigh(rows.T @ rows.conj())
    lines = [strongest_line(fold(np.abs(padded @ vectors[:, -j].conj()) ** 2)) for j in range(1, 5)]
    return max(lines, key=lambda line: line[1])[0]


def nulled_rate(x: np.ndarray, padded: np.ndarray, directions: int, guard: int) -> float:
    n = x.shape[0]
    unpadded = spectrum(x, n)
    pos = band_bins(n)
    best = None
    for k in pos:
        others = [j for j in pos if abs(j - k) > guard]
        rows = np.concatenate([unpadded[others], unpadded[[n - j for j in others]]])
        # The rows' strongest directions: their leading right singular vectors.
        basis = np.linalg.svd(rows, full_matrices=False)[2][:directions].T
        score = sum(
            np.linalg.norm(v - basis @ (basis.conj().T @ v)) ** 2
            for v in (unpadded[k], unpadded[n - k])
        )
        if best is None or score > best[0]:
            best = (score, k, basis)
    _, k, basis = best
    residual = padded - (padded @ basis.conj()) @ basis.T
    p = fold(np.sum(np.abs(residual) ** 2, axis=1))
    scale = N_FFT / n
    lo, hi = max(int(np.floor((k - 1.5) * scale)), 2), int(np.ceil((k + 1.5) * scale))
    return interpolated(p, lo + int(np.argmax(p[lo : hi + 1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seed-base", type=int, default=600000)
    ap.add_argument("--guard", type=int, default=2)
    a = ap.parse_args()
    methods = ["summed", "components"] + [f"nulled {k}" for k in DIRECTIONS]
    right: dict[str, list[tuple[str, bool]]] = {m: [] for m in methods}
    for i in range(a.clips):
        spec = clip_scenario("still", i, 40.0)
        data = sim.generate(json.dumps(spec), seed=a.seed_base + i, duration_s=40.0,
                            device="intel5300")
        truth = float(np.asarray(data["breathing_rate_bpm"]).reshape(-1)[0])
        x = blocks(np.asarray(data["timestamps"]), features(np.asarray(data["csi"])))[-WINDOW:]
        padded = spectrum(x, N_FFT)
        rates = {
            "summed": strongest_line(fold(np.sum(np.abs(padded) ** 2, axis=1)))[0],
            "components": components_rate(x, padded),
        }
        for k in DIRECTIONS:
            rates[f"nulled {k}"] = nulled_rate(x, padded, k, a.guard)
        posture = spec["people"][0]["posture"]
        for m in methods:
            right[m].append((posture, abs(rates[m] - truth) <= 1.0))
        print(f"clip {i:2d} {posture:8s} truth {truth:5.1f}  "
              + "  ".join(f"{m} {rates[m]:5.1f}" for m in methods), flush=True)
    print(f"\nlast 25.6 s window right within 1 bpm, {a.clips} clips from seed {a.seed_base}, "
          f"guard {a.guard} bins:")
    print("| method | all | standing | sitting or lying |\n|---|---|---|---|")
    for m in methods:
        every = [ok for _, ok in right[m]]
        standing = [ok for p, ok in right[m] if p == "standing"]
        others = [ok for p, ok in right[m] if p != "standing"]
        print(f"| {m} | {np.mean(every):.3f} | {np.mean(standing):.3f} | {np.mean(others):.3f} |")


if __name__ == "__main__":
    main()
