"""Plots of the simulator (matplotlib), written to docs/img/:

- ``sim_doppler_walk.png``: a walking person's Doppler spectrogram (one subcarrier,
  clean channel, static part removed; and from impaired CSI after the conjugate product
  of two receive chains, which cancels the per-packet phase offsets);
- ``sim_fall.png``: a fall: amplitude of a few subcarriers against the true head height
  and the activity labels;
- ``sim_phase.png``: raw phase over subcarriers for 30 packets, and after removing each
  packet's fitted linear phase (sanitised).

Run after ``maturin develop --release``:  python docs/make_sim_plots.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from wifi_densepose import sim

OUT = Path(__file__).resolve().parent / "img"


def spectrogram(x: np.ndarray, fs: float, win: int = 128, hop: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = np.hanning(win)
    frames = [x[i : i + win] * w for i in range(0, len(x) - win, hop)]
    s = np.fft.fftshift(np.fft.fft(np.array(frames), axis=1), axes=1)
    f = np.fft.fftshift(np.fft.fftfreq(win, 1 / fs))
    t = (np.arange(len(frames)) * hop + win / 2) / fs
    return t, f, 20 * np.log10(np.abs(s).T + 1e-12)


def doppler() -> None:
    clean = {**sim.describe("walk", duration_s=12, fps=200), "impairments": {"enabled": False}}
    d = sim.generate(clean, dense_pose_grid=0)
    x = d["csi"][:, 0, 0, 15]
    t, f, s = spectrogram(x - x.mean(), 200.0)
    imp = sim.generate("walk", seed=0, duration_s=12, fps=200, dense_pose_grid=0)
    y = imp["csi"][:, 0, 0, 15] * np.conj(imp["csi"][:, 0, 1, 15])
    t2, f2, s2 = spectrogram(y - y.mean(), 200.0)
    fig, ax = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for a, (tt, ff, ss), title in [
        (ax[0], (t, f, s), "clean channel, subcarrier 15, static part removed"),
        (ax[1], (t2, f2, s2), "impaired (CFO, timing, noise, 8-bit): conjugate product of rx 0 and rx 1"),
    ]:
        a.pcolormesh(tt, ff, ss, shading="auto", vmin=ss.max() - 50, vmax=ss.max())
        a.set_ylabel("Doppler (Hz)")
        a.set_title(title, fontsize=9)
    ax[1].set_xlabel("time (s)")
    fig.suptitle("walking at 1.2 m/s, Intel 5300 at 5.18 GHz (2v/λ ≈ 41 Hz)")
    fig.tight_layout()
    fig.savefig(OUT / "sim_doppler_walk.png", dpi=110)


def fall() -> None:
    d = sim.generate("fall_recover", seed=0, duration_s=14, fps=100, dense_pose_grid=0)
    t = d["timestamps"]
    fig, ax = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True)
    for k in (0, 10, 20):
        ax[0].plot(t, np.abs(d["csi"][:, 0, 0, k]), lw=0.7, label=f"subcarrier {k}")
    ax[0].set_ylabel("|H| (card units)")
    ax[0].legend(fontsize=7)
    ax[1].plot(t, d["keypoints_3d"][:, 0, 0, 2], color="k")
    ax[1].set_ylabel("true nose height (m)")
    ax[2].plot(t, d["activity"][:, 0], drawstyle="steps-post")
    ax[2].set_yticks(range(5), sim.ACTIVITIES)
    for _, start, impact, _ in d["falls"]:
        for a in ax:
            a.axvspan(start, impact, color="r", alpha=0.2)
    ax[2].set_xlabel("time (s)")
    fig.suptitle("fall_recover: walk, stand, fall (red), lie, get up, walk")
    fig.tight_layout()
    fig.savefig(OUT / "sim_fall.png", dpi=110)


def phase() -> None:
    d = sim.generate("walk", seed=0, duration_s=1, fps=100, dense_pose_grid=0)
    k = d["subcarriers"]
    ph = np.unwrap(np.angle(d["csi"][:30, 0, 0, :]), axis=1)
    fit = np.polyfit(k, ph.T, 1)
    san = ph - (np.outer(fit[0], k) + fit[1][:, None])
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(k, ph.T, lw=0.7)
    ax[0].set_title("raw unwrapped phase, 30 packets")
    ax[1].plot(k, san.T, lw=0.7)
    ax[1].set_title("sanitised: per-packet linear fit removed")
    for a in ax:
        a.set_xlabel("subcarrier index")
        a.set_ylabel("phase (rad)")
    fig.tight_layout()
    fig.savefig(OUT / "sim_phase.png", dpi=110)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    doppler()
    fall()
    phase()
    print(f"wrote {OUT}/sim_doppler_walk.png, sim_fall.png, sim_phase.png")


if __name__ == "__main__":
    main()
