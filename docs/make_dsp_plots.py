"""Plots of the conditioning steps on a real recording: python docs/make_dsp_plots.py

Reads the Intel 5300 walking recording from ../shared/data/csi/ with csiread (until the
crate's own reader lands) and writes PNGs into docs/img/.
"""

from __future__ import annotations

from pathlib import Path

import csiread
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from wifi_densepose import dsp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "csi"
OUT = ROOT / "docs" / "img"


def load_intel_walk():
    c = csiread.Intel(
        str(DATA / "intel5300_walk_1590161182.dat"), nrxnum=3, ntxnum=3, if_report=False
    )
    c.read()
    raw = np.stack([c.csi[i][:, c.perm[i][:2], :2] for i in range(len(c.csi))])
    t = (c.timestamp_low - c.timestamp_low[0]) * 1e-6
    return np.ascontiguousarray(raw.transpose(0, 3, 2, 1)).astype(np.complex64), t


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    csi, t = load_intel_walk()
    k = dsp.INTEL5300_SUBCARRIERS
    amp, ph = dsp.sanitize(csi, subcarrier_indices=k)
    z = dsp.normalize_amplitude(amp)

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for i in range(0, len(csi), 15):
        ax[0].plot(k, np.unwrap(np.angle(csi[i, 0, 0])), lw=0.8)
        ax[1].plot(k, ph[i, 0, 0], lw=0.8)
    ax[0].set(title="raw phase (unwrapped), tx0 rx0", xlabel="subcarrier", ylabel="rad")
    ax[1].set(title="sanitized phase", xlabel="subcarrier")
    fig.tight_layout()
    fig.savefig(OUT / "dsp_phase.png", dpi=110)

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].imshow(amp[:, 0, 0].T, aspect="auto", origin="lower", extent=[t[0], t[-1], 0, 30])
    ax[0].set(title="|H|, tx0 rx0", xlabel="s", ylabel="subcarrier group")
    ax[1].imshow(z[:, 0, 0].T, aspect="auto", origin="lower", extent=[t[0], t[-1], 0, 30])
    ax[1].set(title="robust z-score", xlabel="s")
    fig.tight_layout()
    fig.savefig(OUT / "dsp_amplitude.png", dpi=110)

    fs = 1.0 / np.median(np.diff(t))
    cp = dsp.conjugate_product(csi[:, 0])  # (n, 1 pair, 30): offsets cancelled
    power, freqs, times = dsp.doppler_spectrogram(cp, fs, 32, 4, nfft=64)
    motion = dsp.motion_statistic(dsp.hampel(z, 3, 3.0), 25, 1)
    fig, ax = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax[0].pcolormesh(times, freqs, 10 * np.log10(power.T + 1e-12), shading="nearest")
    ax[0].set(title="Doppler spectrogram (dB) of the rx0-rx1 conjugate product, tx0", ylabel="Hz")
    ax[1].plot(t[24:], motion)
    ax[1].set(title="motion statistic (25 packets)", xlabel="s", ylabel="M")
    fig.tight_layout()
    fig.savefig(OUT / "dsp_doppler_motion.png", dpi=110)
    print("wrote", sorted(p.name for p in OUT.glob("dsp_*.png")))


if __name__ == "__main__":
    main()
