"""Statistics of the simulator against the real recordings in ../shared/data/csi.

For each recording (read with our own reader, ``wifi_densepose.read_csi``) and for
simulated runs with matching device profiles, on the first antenna pair, non-null
subcarriers only:

- ``amp CV``: amplitude spread over time, the median over subcarriers of
  std(|H|) / mean(|H|) across the packets;
- ``freq sel dB``: frequency selectivity, the median over packets of the standard
  deviation of 20 log10 |H| across subcarriers;
- ``slope std``: phase-slope spread, the standard deviation across packets of the
  per-packet least-squares slope of the unwrapped phase over the subcarrier index, in
  rad per 312.5 kHz bin and as a delay (ns);
- ``motion``: the median over 1-second windows and subcarriers of std(|H|)/mean(|H|)
  within the window (0 for a static channel; what a motion detector thresholds).

Run after ``maturin develop --release``:  python docs/sim_vs_real.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import sim

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"
DF = 312_500.0


def bins(n: int) -> np.ndarray:
    """OFDM bin index of each reported subcarrier, by count (reader order)."""
    if n == 30:
        return np.array(list(range(-28, -1, 2)) + [-1] + list(range(1, 28, 2)) + [28])
    if n == 56:
        return np.array(list(range(-28, 0)) + list(range(1, 29)))
    if n == 114:
        return np.array(list(range(-58, -1)) + list(range(2, 59)))
    half = n // 2
    return np.array(list(range(half)) + list(range(-half, 0)))  # FFT order


def stats(csi: np.ndarray, ts: np.ndarray) -> dict[str, float]:
    h = csi[:, 0, 0, :].astype(np.complex128)
    k = bins(h.shape[1])
    amp = np.abs(h)
    keep = amp.mean(axis=0) > 0.05 * np.median(amp.mean(axis=0))
    h, k, amp = h[:, keep], k[keep], amp[:, keep]
    order = np.argsort(k)
    h, k, amp = h[:, order], k[order], amp[:, order]
    good = np.all(amp > 0, axis=1)
    h, amp, ts = h[good], amp[good], ts[good]
    out = {"packets": float(len(h))}
    out["amp CV"] = float(np.median(amp.std(axis=0) / amp.mean(axis=0)))
    out["freq sel dB"] = float(np.median((20 * np.log10(amp)).std(axis=1)))
    ph = np.unwrap(np.angle(h), axis=1)
    slope = np.polyfit(k, ph.T, 1)[0]
    out["slope std rad/bin"] = float(slope.std())
    out["slope std ns"] = float(slope.std() / (2 * np.pi * DF) * 1e9)
    t = ts - ts[0]
    cvs = []
    for w0 in np.arange(0, max(t[-1], 1e-9), 1.0):
        sel = (t >= w0) & (t < w0 + 1.0)
        if sel.sum() >= 10:
            a = amp[sel]
            cvs.append(np.median(a.std(axis=0) / a.mean(axis=0)))
    out["motion"] = float(np.median(cvs)) if cvs else float("nan")
    return out


def real(name: str, **kw) -> dict[str, float]:
    rec = wdp.read_csi(str(DATA / name), **kw)
    csi = np.asarray(rec.csi)
    return stats(csi, np.asarray(rec.timestamps, dtype=float))


def simulated(scenario: str, device: str, seconds: float = 20.0, fps: float = 100.0) -> dict[str, float]:
    d = sim.generate(scenario, seed=0, duration_s=seconds, device=device, fps=fps, dense_pose_grid=0)
    return stats(d["csi"], d["timestamps"])


def main() -> None:
    rows = [
        ("real intel5300 walk", lambda: real("intel5300_walk_1590161182.dat")),
        ("real nexmon 43455c0 walk", lambda: real("nexmon_bcm43455c0_walk_1597159475.pcap")),
        ("real atheros", lambda: real("atheros_ath_csi_1.dat")),
        ("real esp32", lambda: real("esp32_example_csi.csv")),
        ("sim intel5300 walk", lambda: simulated("walk", "intel5300")),
        ("sim intel5300 empty", lambda: simulated("empty", "intel5300")),
        ("sim nexmon walk", lambda: simulated("walk", "nexmon")),
        ("sim atheros walk", lambda: simulated("walk", "atheros")),
        ("sim esp32 walk", lambda: simulated("walk", "esp32")),
    ]
    cols = ["packets", "amp CV", "freq sel dB", "slope std rad/bin", "slope std ns", "motion"]
    print("| source | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, fn in rows:
        try:
            s = fn()
            print(f"| {name} | " + " | ".join(f"{s[c]:.3g}" for c in cols) + " |")
        except (OSError, ValueError) as e:  # an unreadable recording is reported, not fatal
            print(f"| {name} | error: {e} |")


if __name__ == "__main__":
    main()
