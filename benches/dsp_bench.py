"""Times wifi_densepose.dsp against numpy/scipy doing the same work, in one run.

    python benches/dsp_bench.py [--batch N] [--repeat R]

Per frame (shapes 3x3x30, 1x3x56, 1x1x64, 4x256):
  * condition_frame: amplitude + sanitized phase + robust z-scored amplitude
    (ours: sanitize + normalize_amplitude; numpy: vectorized abs/angle/unwrap, closed-form
    least squares, median/MAD);
  * Conditioner.push: the streaming conditioner with its defaults (causal Hampel k=3 on
    amplitude and phase, motion over 50 frames) against a numpy streaming twin (ring of
    frames, np.median over the window, motion from the ring).
Per batch (N frames of each shape): sanitize+normalize, Hampel (k=3, centred; numpy with
sliding_window_view), Butterworth zero-phase (scipy.signal.sosfiltfilt), spectrogram
(scipy.signal.spectrogram). Every pair is checked to agree before it is timed.

The first lines give the machine's load and the floor of a call into the extension: an
empty call, and a call that takes a complex64 frame and returns two new float32 arrays of
its shape (what condition_frame does besides computing), so that the per-frame figures
can be read against what no implementation behind this API can go below.
"""

from __future__ import annotations

import argparse
import os
import platform
import timeit

import numpy as np
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view
from wifi_densepose import dsp
from wifi_densepose._native import dsp as _native

SHAPES = [(3, 3, 30), (1, 3, 56), (1, 1, 64), (4, 256)]


# ------------------------------------------------------------------ numpy twins


def np_condition_frame(csi):
    csi = csi.astype(np.complex128)  # as the Rust code, unwrap in double precision
    amp = np.abs(csi)
    ph = np.unwrap(np.angle(csi), axis=-1)
    n = csi.shape[-1]
    xc = np.arange(n) - (n - 1) / 2
    mean = ph.mean(-1, keepdims=True)
    slope = (ph * xc).sum(-1, keepdims=True) / (xc * xc).sum()
    ph = ph - mean - slope * xc
    med = np.median(amp, axis=-1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(amp - med), axis=-1, keepdims=True)
    return (amp - med) / mad, ph


class NumpyConditioner:
    def __init__(self, k=3, n_sigmas=3.0, motion_window=50):
        self.k, self.ns, self.mw = k, n_sigmas, motion_window
        self.ring_a, self.ring_p, self.ring_m = [], [], []

    def _hampel(self, ring, x):
        ring.append(x)
        if len(ring) > 2 * self.k + 1:
            ring.pop(0)
        w = np.stack(ring)
        med = np.median(w, axis=0)
        s = 1.4826 * np.median(np.abs(w - med), axis=0)
        return np.where(np.abs(x - med) > self.ns * s, med, x)

    def push(self, csi):
        z, ph = np_condition_frame(csi)
        a = self._hampel(self.ring_a, z)
        p = self._hampel(self.ring_p, ph)
        self.ring_m.append(a)
        if len(self.ring_m) > self.mw:
            self.ring_m.pop(0)
        m = None
        if len(self.ring_m) == self.mw:
            w = np.stack(self.ring_m)
            m = ((w - w.mean(0)) ** 2).sum() / (w**2).sum()
        return a, p, m


def np_hampel(x, k, n_sigmas):
    n = x.shape[0]
    pad = np.concatenate(
        [np.full((k,) + x.shape[1:], np.nan), x, np.full((k,) + x.shape[1:], np.nan)]
    )
    w = sliding_window_view(pad, 2 * k + 1, axis=0)
    med = np.nanmedian(w, axis=-1)
    s = 1.4826 * np.nanmedian(np.abs(w - med[..., None]), axis=-1)
    return np.where(np.abs(x - med) > n_sigmas * s, med, x)[:n]


# ------------------------------------------------------------------ timing


def best(fn, repeat, number):
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def row(label, shape, ours, ref):
    print(f"{label:<28s} {shape!s:<18s} {ours * 1e6:>11.2f} {ref * 1e6:>12.2f} {ref / ours:>8.1f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, scipy {scipy.__version__}"
    )
    print("# load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    frame = np.zeros((3, 3, 30), np.complex64)
    print(
        f"# call floor: empty call {best(_native._call_floor, args.repeat, 100000) * 1e6:.3f} us, "
        f"3x3x30 in + two arrays out "
        f"{best(lambda: _native._io_floor(frame), args.repeat, 100000) * 1e6:.3f} us"
    )
    print(f"{'step':<28s} {'shape':<18s} {'ours (us)':>11s} {'numpy (us)':>12s} {'ratio':>9s}")

    def csi(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)

    for shape in SHAPES:
        x = csi(shape)
        z, ph = np_condition_frame(x)
        a, p = dsp.sanitize(x)
        assert np.allclose(dsp.normalize_amplitude(a), z, atol=1e-4) and np.allclose(
            p, ph, atol=1e-4
        )

        def ours(x=x):
            return dsp.condition_frame(x)

        row(
            "condition_frame",
            shape,
            best(ours, args.repeat, 2000),
            best(lambda x=x: np_condition_frame(x), args.repeat, 500),
        )

    for shape in SHAPES:
        s3 = shape if len(shape) == 3 else (1,) + shape
        frames = csi((300,) + s3)
        c, nc = dsp.Conditioner(), NumpyConditioner()
        flips = 0
        for f in frames[:60]:  # warm, and check agreement
            a, p, m = c.push(f)
            na, npp, nm = nc.push(f)
            flips += np.sum(~np.isclose(a, na, atol=1e-4)) + np.sum(~np.isclose(p, npp, atol=1e-4))
            assert (m is None) == (nm is None) and (m is None or abs(m - nm) < 1e-3 * nm)
        # float32 (ours) vs float64 (numpy) z-scores can flip a Hampel decision that sits
        # within 1e-6 of its threshold: allow a rare disagreement
        assert flips < 1e-3 * 60 * 2 * a.size, flips
        it = iter(range(10**9))

        def ours(c=c, frames=frames, it=it):
            return c.push(frames[next(it) % 300])

        def ref(nc=nc, frames=frames, it=it):
            return nc.push(frames[next(it) % 300])

        row("Conditioner.push", s3, best(ours, args.repeat, 1000), best(ref, args.repeat, 100))

    n = args.batch
    for shape in SHAPES:
        xb = csi((n,) + shape)

        def ours(xb=xb):
            a, p = dsp.sanitize(xb)
            return dsp.normalize_amplitude(a), p

        row(
            f"sanitize+normalize x{n}",
            shape,
            best(ours, 3, 3),
            best(lambda xb=xb: np_condition_frame(xb), 3, 1),
        )
        amp = np.abs(xb).astype(np.float32)
        assert np.allclose(dsp.hampel(amp[:200], 3, 3.0), np_hampel(amp[:200], 3, 3.0), atol=1e-5)
        row(
            f"hampel k=3 x{n}",
            shape,
            best(lambda amp=amp: dsp.hampel(amp, 3, 3.0), 3, 1),
            best(lambda amp=amp: np_hampel(amp, 3, 3.0), 3, 1),
        )
        sos = scipy.signal.butter(4, [1.0, 20.0], btype="band", fs=100.0, output="sos")
        assert np.allclose(
            dsp.butter_filter(amp, 100.0, 1.0, 20.0, 4),
            scipy.signal.sosfiltfilt(sos, amp, axis=0),
            atol=1e-3,
        )
        row(
            f"butter bp4 zero-phase x{n}",
            shape,
            best(lambda amp=amp: dsp.butter_filter(amp, 100.0, 1.0, 20.0, 4), 3, 1),
            best(lambda amp=amp, sos=sos: scipy.signal.sosfiltfilt(sos, amp, axis=0), 3, 1),
        )

        def sp_ref(xb=xb):
            _, _, s = scipy.signal.spectrogram(
                xb,
                100.0,
                window="hann",
                nperseg=128,
                noverlap=96,
                detrend="constant",
                return_onesided=False,
                scaling="density",
                mode="psd",
                axis=0,
            )
            return s.reshape(s.shape[0], -1, s.shape[-1]).mean(1)

        ours_s = dsp.doppler_spectrogram(xb, 100.0, 128, 32)[0]
        assert np.allclose(
            ours_s, np.fft.fftshift(sp_ref().T, axes=1), rtol=1e-3, atol=1e-6 * ours_s.max()
        )
        row(
            f"spectrogram 128/32 x{n}",
            shape,
            best(lambda xb=xb: dsp.doppler_spectrogram(xb, 100.0, 128, 32), 3, 1),
            best(sp_ref, 3, 1),
        )


if __name__ == "__main__":
    main()
