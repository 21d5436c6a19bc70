"""Still subjects on the real Intel 5300 recordings, with and without the receive chains'
quarter-turn steps taken out (``docs/sensing.md``, "Real Intel 5300 cards").

    .venv/bin/python benches/real_intel_still.py

The Gi-z heart-rate and respiration recordings in ``../shared/data/labelled`` hold a
subject keeping still (their labels are heart rates; no breathing truth, no empty room).
Per recording: its layout, packet rate and length; how many consecutive packets step a
receive chain by a near quarter turn (within 8 degrees, the products' correlation with
the previous packet's); and the sensor's motion and presence over all frames, with the
steps left in (``sensing.sense(..., align_chains=False)``, what the sensor did before
``src/sensing/chains.rs``) and taken out (the default).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import sensing

GIZ = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "labelled" / "gi-z_csi-data" / "intel"
RECORDINGS = ["respiration/3breaths.dat"] + [f"heart_rate/{b}bpm.dat" for b in (66, 73, 75, 76, 84, 88, 90)]


def step_share(csi: np.ndarray) -> float:
    """Share of consecutive packets in which some receive chain turned by a near multiple
    of a quarter turn against the first chain."""
    p = csi[:, :, 1:, :] * np.conj(csi[:, :, :1, :])
    change = np.angle((p[1:] * np.conj(p[:-1])).sum(axis=(1, 3)))
    q = np.round(change / (np.pi / 2))
    step = (q != 0) & (np.abs(change - q * np.pi / 2) < np.radians(8))
    return float(step.any(axis=1).mean()) if len(step) else 0.0


def main() -> int:
    print("| recording | layout, rate, length | packets stepping | motion, steps in / out | "
          "present, steps in / out |")
    print("|---|---|---|---|---|")
    for name in RECORDINGS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = wdp.read_csi(GIZ / name)
        csi = r.csi_dominant()
        ts = np.asarray(r.timestamps)[r.dominant_indices]
        length = float(ts[-1] - ts[0])
        rate = len(ts) / length if length > 0 else float("nan")
        raw = sensing.sense(csi, ts, align_chains=False)
        out = sensing.sense(csi, ts)
        layout = "x".join(str(v) for v in csi.shape[1:])
        print(f"| `{name}` | {layout}, {rate:.0f} Hz, {length:.1f} s | {step_share(csi):.2f} | "
              f"{np.mean(raw['motion_detected']):.2f} / {np.mean(out['motion_detected']):.2f} | "
              f"{np.mean(raw['presence']):.2f} / {np.mean(out['presence']):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
