"""The receive chains' quarter-turn steps: how the aligner's settings were measured
(``src/sensing/chains.rs``, ``docs/sensing.md``, "Real Intel 5300 cards").

    .venv/bin/python benches/chain_steps.py            # about 3 minutes on 2 cores

1. **Detection.** For every real multi-antenna recording in ``../shared/data`` (at least 70
   frames) and for simulated Intel 5300 clips whose chains do not step
   (``impairments.rx_chain_steps: false``; the held-out sensing clips, still and daily,
   seeds 700000+), the most and fewest frames in any 64 in which some chain changed by a
   near multiple of a quarter turn (within 8 degrees), judged by the products'
   correlation with the previous frame's. A source steps once 8 of 64 do.
2. **How often a person fools the judgement**: on the same simulated clips, the share of
   chain-packets whose change exceeds an eighth of a turn, judged by the products' sums'
   phases and by their correlation.
3. **Wrong turns and the turn-back**: on 8 tuning days (``clip_scenario("daily", 3000 +
   i)``, seeds 780000 + i, never scored elsewhere), a numpy copy of the aligner run over
   the stepping simulation, compared with the same days without steps: the share of
   chain-frames left off their usual quarter, without and with the turn-back (a chain a
   clean quarter, within 20 degrees, off its 400-frame background for 5 frames is turned
   back again).
"""

from __future__ import annotations

import glob
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import sensing_eval as se
from wifi_densepose import sim

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TOLERANCE = np.radians(8)


def products(csi: np.ndarray) -> np.ndarray:
    """(n, n_tx, n_rx - 1, n_sub): each chain after the first against the first."""
    return csi[:, :, 1:, :] * np.conj(csi[:, :, :1, :])


def step_counts(csi: np.ndarray) -> np.ndarray:
    """Frames in each 64 in which some chain changed by a near quarter multiple."""
    p = products(csi)
    change = np.angle((p[1:] * np.conj(p[:-1])).sum(axis=(1, 3)))
    q = np.round(change / (np.pi / 2))
    step = ((q != 0) & (np.abs(change - q * np.pi / 2) < TOLERANCE)).any(axis=1)
    return np.convolve(step.astype(int), np.ones(64, int), mode="valid")


def real_recordings() -> list[tuple[str, bool, np.ndarray]]:
    """(name, whether an Intel 5300 recorded it, frames) of every real multi-antenna
    recording with at least 70 frames."""
    out = []
    paths = sorted(glob.glob(str(SHARED / "labelled" / "gi-z_csi-data" / "intel" / "**" / "*.dat"),
                          recursive=True)) + sorted(glob.glob(str(SHARED / "csi" / "*")))
    for path in paths:
        if path.endswith((".md", ".json")) or "SHA256" in path or Path(path).is_dir():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csi = wdp.read_csi(path).csi_dominant()
        if csi.shape[2] >= 2 and len(csi) >= 70:
            intel = "gi-z_csi-data" in path or Path(path).name.startswith("intel5300")
            out.append((Path(path).name, intel, csi))
    return out


def simulated(seed_base: int, first: int, n: int, kinds: tuple[str, ...], steps: bool,
              duration_s: float = 40.0) -> list[np.ndarray]:
    out = []
    for kind in kinds:
        for i in range(n):
            spec = se.clip_scenario(kind, first + i, duration_s)
            spec["impairments"] = {"rx_chain_steps": steps}
            out.append(sim.generate(json.dumps(spec), seed=seed_base + i, duration_s=duration_s,
                                    device="intel5300")["csi"])
    return out


def align(a: np.ndarray, turn_back: bool) -> np.ndarray:
    """A numpy copy of ``ChainAligner`` for a source known to step (from its first frame)."""
    n, _, n_rx, _ = a.shape
    prev: list = [None] * n_rx
    background: list = [None] * n_rx
    run = [0] * n_rx
    run_q = [0] * n_rx
    out = a.copy()
    for t in range(n):
        for rx in range(1, n_rx):
            p = a[t, :, rx, :] * np.conj(a[t, :, 0, :])
            turn = 0
            if prev[rx] is not None:
                turn = int(np.round(np.angle((p * np.conj(prev[rx])).sum()) / (np.pi / 2))) % 4
            aligned = p * (1j) ** (-turn)
            if turn_back and background[rx] is not None:
                c = np.angle((aligned * np.conj(background[rx])).sum())
                q = int(np.round(c / (np.pi / 2)))
                if q % 4 and abs(c - q * np.pi / 2) < np.radians(20):
                    run[rx], run_q[rx] = (run[rx] + 1, q % 4) if run_q[rx] == q % 4 else (1, q % 4)
                    if run[rx] >= 5:
                        turn = (turn + q) % 4
                        aligned = aligned * (1j) ** (-q)
                        run[rx] = 0
                else:
                    run[rx] = 0
            out[t, :, rx, :] = a[t, :, rx, :] * (1j) ** (-turn)
            prev[rx] = aligned
            background[rx] = (aligned.copy() if background[rx] is None
                              else background[rx] + (aligned - background[rx]) / 400)
    return out


def off_quarter(aligned: np.ndarray, clean: np.ndarray) -> tuple[int, int]:
    """Chain-frames whose quarter against the clean channel is not the clip's usual one."""
    off = np.angle((products(aligned) * np.conj(products(clean))).sum(axis=(1, 3)))
    q = np.round(off / (np.pi / 2)).astype(int) % 4
    bad = sum(int((q[:, c] != np.bincount(q[:, c], minlength=4).argmax()).sum())
              for c in range(q.shape[1]))
    return bad, q.size


def main() -> int:
    real = real_recordings()
    intel = [step_counts(c) for _, is_intel, c in real if is_intel]
    others = [(name, step_counts(c)) for name, is_intel, c in real if not is_intel]
    print(f"1. real Intel 5300 recordings ({len(intel)}): fewest / most steps in any 64 frames "
          f"{min(int(c.min()) for c in intel)} / {max(int(c.max()) for c in intel)}")
    for name, c in others:
        print(f"   {name}: most steps in any 64 frames {int(c.max())}")
    held = simulated(se.SEED_BASE, 0, 12, ("still", "daily"), steps=False)
    print(f"   simulated, no steps (24 held-out clips): most steps in 64 frames "
          f"{max(int(step_counts(c).max()) for c in held)}")
    by_sum = by_corr = total = 0
    for c in held:
        p = products(c)
        s = p.sum(axis=(1, 3))
        by_sum += int((np.abs(np.angle(s[1:] * np.conj(s[:-1]))) > np.pi / 4).sum())
        by_corr += int((np.abs(np.angle((p[1:] * np.conj(p[:-1])).sum(axis=(1, 3)))) > np.pi / 4).sum())
        total += s[1:].size
    print(f"2. chain-packets turned by more than an eighth of a turn: by the sums' phases "
          f"{by_sum / total:.4f}, by correlation {by_corr / total:.4f} ({total} chain-packets)")
    stepping = simulated(780_000, 3000, 8, ("daily",), steps=True, duration_s=60.0)
    clean = simulated(780_000, 3000, 8, ("daily",), steps=False, duration_s=60.0)
    for turn_back in (False, True):
        bad = size = 0
        for a, b in zip(stepping, clean):
            x, y = off_quarter(align(a, turn_back), b)
            bad, size = bad + x, size + y
        label = "with the turn-back" if turn_back else "without the turn-back"
        print(f"3. 8 tuning days, {label}: chain-frames off their usual quarter {bad / size:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
