"""wifi_densepose.dsp against independent numpy / scipy computations.

Synthetic signals have known answers (a planted slope, a tone, planted outliers); real
recordings come from ../shared/data/csi/ (MATLAB reference outputs through scipy.io, the
ESP32 CSV parsed here, and the walking and static recordings through our own readers,
which tests/test_csi.py checks against the official readers).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.signal
import wifi_densepose as wdp
from wifi_densepose import dsp, sensing
from wifi_densepose import sensing_eval as se

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "csi"
RNG = np.random.default_rng(20260424)


def rand_csi(shape, rng=RNG):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


# ---------------------------------------------------------------- numpy references


def ref_sanitize(csi, idx=None):
    csi = csi.astype(np.complex128)
    n = csi.shape[-1]
    m = np.arange(n, dtype=np.float64) if idx is None else np.asarray(idx, np.float64)
    ph = np.unwrap(np.angle(csi), axis=-1)
    flat = ph.reshape(-1, n)
    out = np.empty_like(flat)
    for i, row in enumerate(flat):
        a, b = np.polyfit(m, row, 1)
        out[i] = row - (a * m + b)
    return np.abs(csi), out.reshape(ph.shape)


def ref_hampel(x, k, n_sigmas, causal=False):
    x = np.asarray(x, np.float64)
    y = x.copy()
    n = x.shape[0]
    flat = x.reshape(n, -1)
    yf = y.reshape(n, -1)
    for i in range(n):
        lo, hi = (max(0, i - 2 * k), i + 1) if causal else (max(0, i - k), min(n, i + k + 1))
        w = flat[lo:hi]
        med = np.median(w, axis=0)
        s = 1.4826 * np.median(np.abs(w - med), axis=0)
        bad = np.abs(flat[i] - med) > n_sigmas * s
        yf[i, bad] = med[bad]
    return y


def ref_robust_z(a):
    a = np.asarray(a, np.float64)
    med = np.median(a, axis=-1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(a - med), axis=-1, keepdims=True)
    return (a - med) / mad


def ref_motion(x, w, hop):
    x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    out = []
    for s in range(0, x.shape[0] - w + 1, hop):
        seg = x[s : s + w]
        out.append(((seg - seg.mean(0)) ** 2).sum() / (seg**2).sum())
    return np.array(out)


# ---------------------------------------------------------------- interface


def test_dtype_errors_name_the_dtype():
    x64 = np.zeros((2, 3, 30), np.complex128)
    with pytest.raises(TypeError, match="complex128"):
        dsp.sanitize(x64)
    with pytest.raises(TypeError, match="float64"):
        dsp.hampel(np.zeros((10, 3)), 3, 3.0)
    with pytest.raises(TypeError, match="list"):
        dsp.butter_filter([1.0, 2.0], 10.0, high=1.0)
    with pytest.raises(TypeError, match="int32"):
        dsp.motion_statistic(np.zeros((10, 3), np.int32), 4)
    with pytest.raises(TypeError, match="complex128"):
        dsp.Conditioner().push(x64[0:1])


def test_bad_values_raise_value_error():
    x = rand_csi((1, 3, 30))
    x[0, 1, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        dsp.sanitize(x)
    with pytest.raises(ValueError, match="empty"):
        dsp.sanitize(np.zeros((0, 3, 30), np.complex64))
    with pytest.raises(ValueError, match="window"):
        dsp.hampel(np.zeros((10, 2), np.float32), 0, 3.0)
    with pytest.raises(ValueError, match="fs/2"):
        dsp.butter_filter(np.zeros((100,), np.float32), 10.0, high=6.0)
    with pytest.raises(ValueError, match="samples"):
        dsp.butter_filter(np.zeros((5,), np.float32), 10.0, high=2.0)
    with pytest.raises(ValueError, match="receive antennas"):
        dsp.conjugate_product(rand_csi((2, 1, 30)))
    with pytest.raises(ValueError, match="window"):
        dsp.doppler_spectrogram(rand_csi((10, 3)), 100.0, 32, 4)
    with pytest.raises(ValueError, match="rssi"):
        dsp.normalize_amplitude(np.ones((4, 1, 2, 8), np.float32), rssi=[-40.0])
    for bad in (
        {"hampel_window": 10**6},
        {"motion_window": 1},
        {"motion_window": 10**9},
        {"high": 60.0},
        {"n_subcarriers": 1},
        {"order": 0, "low": 1.0},
    ):
        with pytest.raises(ValueError):
            dsp.Conditioner(**bad)
    c = dsp.Conditioner()
    c.push(rand_csi((1, 3, 30)))
    with pytest.raises(ValueError, match="reset"):
        c.push(rand_csi((1, 3, 56)))
    c.reset()
    c.push(rand_csi((1, 3, 56)))
    with pytest.raises(ValueError, match=r"n_tx, n_rx, n_sub"):
        c.push(rand_csi((3, 56)))


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed"])
def test_any_memory_layout(layout):
    base = rand_csi((6, 3, 3, 60))
    if layout == "fortran":
        x = np.asfortranarray(base[:, :, :, :30])
    elif layout == "strided":
        x = base[::2, :, :, ::2]
    else:
        x = base[::-1, :, ::-1, :30]
    assert not x.flags.c_contiguous
    a, p = dsp.sanitize(x)
    a2, p2 = dsp.sanitize(np.ascontiguousarray(x))
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(p, p2)
    amp = np.abs(x).astype(np.float32)
    np.testing.assert_array_equal(
        dsp.hampel(amp, 2, 3.0), dsp.hampel(np.ascontiguousarray(amp), 2, 3.0)
    )


def test_gil_is_released():
    x = RNG.standard_normal((4000, 400)).astype(np.float32)
    done = threading.Event()
    ticks = []

    def work():
        dsp.hampel(x, 5, 3.0)
        done.set()

    t = threading.Thread(target=work)
    t0 = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    elapsed = time.perf_counter() - t0
    # With the GIL held the loop could not run during the call: at most a tick or two.
    assert elapsed > 0.05, "call too short to tell"
    assert len(ticks) > 10, (len(ticks), elapsed)


# ---------------------------------------------------------------- phase


def test_sanitize_removes_known_slope_and_offset():
    n = 56
    k = np.arange(n)
    nonlinear = 0.2 * np.sin(0.3 * k)
    csi = np.empty((4, 2, 3, n), np.complex64)
    for t in range(4):
        for a in range(2):
            for r in range(3):
                slope, offset = 0.5 + 0.7 * t, -2.0 + a + 0.3 * r  # several wraps per link
                csi[t, a, r] = 1.5 * np.exp(1j * (slope * k + offset + nonlinear))
    amp, ph = dsp.sanitize(csi)
    want = nonlinear - np.polyval(np.polyfit(k, nonlinear, 1), k)
    np.testing.assert_allclose(ph, np.broadcast_to(want, ph.shape), atol=3e-5)
    np.testing.assert_allclose(amp, 1.5, rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 3, 30), (1, 3, 56), (1, 1, 64), (7, 1, 4, 256)])
def test_sanitize_matches_numpy(shape):
    csi = rand_csi(shape)
    amp, ph = dsp.sanitize(csi)
    ra, rp = ref_sanitize(csi)
    assert amp.dtype == np.float32 and ph.shape == csi.shape
    np.testing.assert_allclose(amp, ra, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ph, rp, atol=1e-4)


def test_sanitize_with_intel_indices_on_real_data():
    m = scipy.io.loadmat(DATA / "reference" / "intel5300_log.all_csi.6.7.6.matlab_read_bf_file.mat")
    frames = [m["csi"][i, 0][0, 0]["csi"].astype(np.complex64) for i in range(m["csi"].shape[0])]
    assert len(frames) == 29
    for f in frames:
        amp, ph = dsp.sanitize(f, subcarrier_indices=dsp.INTEL5300_SUBCARRIERS)
        ra, rp = ref_sanitize(f, dsp.INTEL5300_SUBCARRIERS)
        np.testing.assert_allclose(amp, ra, rtol=1e-6)
        np.testing.assert_allclose(ph, rp, atol=1e-4)
        # the fitted line is gone: residual has zero mean and no slope
        np.testing.assert_allclose(ph.mean(-1), 0, atol=1e-4)


@pytest.mark.parametrize("shape", [(3, 3, 30), (5, 1, 4, 256)])
def test_condition_frame_is_sanitize_then_normalize(shape):
    csi = rand_csi(shape)
    a, p = dsp.condition_frame(csi)
    amp, ph = dsp.sanitize(csi)
    np.testing.assert_allclose(a, dsp.normalize_amplitude(amp), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(p, ph)
    np.testing.assert_allclose(
        a, ref_robust_z(np.abs(csi.astype(np.complex128))), rtol=1e-4, atol=1e-4
    )
    if len(shape) == 4:
        r = RNG.uniform(-60, -30, shape[0])
        a, _ = dsp.condition_frame(csi, rssi=r)
        np.testing.assert_allclose(a, dsp.normalize_amplitude(amp, rssi=r), rtol=1e-6)


def test_conjugate_product_matches_numpy_and_cancels_offsets():
    csi = rand_csi((5, 2, 3, 30))
    cp = dsp.conjugate_product(csi)
    pairs = dsp.antenna_pairs(3)
    assert pairs == [(0, 1), (0, 2), (1, 2)] and cp.shape == (5, 2, 3, 30)
    for p, (i, j) in enumerate(pairs):
        np.testing.assert_allclose(
            cp[..., p, :], csi[..., i, :] * np.conj(csi[..., j, :]), rtol=1e-5, atol=1e-5
        )
    # a per-packet timing + carrier offset shared by the receive chains cancels
    k = np.arange(30)
    off = np.exp(1j * (RNG.uniform(-3, 3, (5, 1, 1, 1)) * k + RNG.uniform(-3, 3, (5, 1, 1, 1))))
    np.testing.assert_allclose(
        dsp.conjugate_product((csi * off).astype(np.complex64)), cp, rtol=1e-4, atol=1e-4
    )


# ---------------------------------------------------------------- hampel


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("k", [1, 3, 6, 10])
def test_hampel_matches_numpy(k, causal):
    x = RNG.standard_normal((120, 3, 5)).astype(np.float32)
    x[RNG.integers(0, 120, 20), RNG.integers(0, 3, 20), RNG.integers(0, 5, 20)] += 15
    y = dsp.hampel(x, k, 2.5, causal=causal)
    np.testing.assert_allclose(y, ref_hampel(x, k, 2.5, causal), rtol=1e-6, atol=1e-6)


def test_hampel_with_ties_matches_numpy():
    # integer-valued data: many equal values in every window, even-length edge windows
    x = RNG.integers(-3, 4, (60, 7)).astype(np.float32)
    x[[5, 30, 59], [0, 3, 6]] = 40
    for k, causal in [(1, False), (2, True), (3, False), (9, True)]:
        np.testing.assert_array_equal(
            dsp.hampel(x, k, 2.0, causal=causal), ref_hampel(x, k, 2.0, causal)
        )


def test_hampel_removes_planted_outliers():
    t = np.arange(500) / 100.0
    clean = np.stack([np.sin(2 * np.pi * 1.3 * t), np.cos(2 * np.pi * 0.7 * t)], 1).astype(
        np.float32
    )
    x = clean.copy()
    where = [(13, 0), (200, 1), (201, 1), (499, 0), (0, 1)]
    for i, j in where:
        x[i, j] += 8.0
    y, n = dsp.hampel(x, 4, 3.0, return_count=True)
    assert n >= len(where)
    for i, j in where:
        w = clean[max(0, i - 4) : i + 5, j]
        assert w.min() - 1e-6 <= y[i, j] <= w.max() + 1e-6, (i, j, y[i, j])
    # untouched elsewhere, except where the sine's own curvature trips the threshold
    assert np.mean(y == x) > 0.95


# ---------------------------------------------------------------- amplitude


def test_normalize_amplitude_robust_z_matches_numpy_and_removes_gain():
    amp = np.abs(rand_csi((20, 2, 3, 30))).astype(np.float32)
    gain = RNG.uniform(0.2, 5.0, (20, 1, 1, 1)).astype(np.float32)
    z = dsp.normalize_amplitude(amp)
    np.testing.assert_allclose(z, ref_robust_z(amp), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dsp.normalize_amplitude(amp * gain), z, rtol=1e-4, atol=1e-4)
    # complex input is |csi|
    c = rand_csi((2, 3, 30))
    np.testing.assert_allclose(
        dsp.normalize_amplitude(c), ref_robust_z(np.abs(c)), rtol=1e-5, atol=1e-5
    )


def test_normalize_amplitude_rssi_on_esp32():
    rows = esp32_rows()
    csi = np.stack([r[1] for r in rows])
    rssi = np.array([r[0] for r in rows], np.float32)
    amp = np.abs(csi)
    out = dsp.normalize_amplitude(amp, rssi=rssi)
    p = (amp.astype(np.float64) ** 2).reshape(len(amp), -1).mean(1)
    want = amp * np.sqrt(10 ** (rssi.astype(np.float64) / 10) / p)[:, None, None, None]
    np.testing.assert_allclose(out, want, rtol=1e-5)
    np.testing.assert_allclose(
        10 * np.log10((out.astype(np.float64) ** 2).reshape(len(out), -1).mean(1)), rssi, atol=1e-4
    )


# ---------------------------------------------------------------- resampling


def test_resample_real_matches_interp():
    x = RNG.standard_normal((4, 2, 30)).astype(np.float32)
    idx = dsp.INTEL5300_SUBCARRIERS
    for n_out in (30, 56, 64, 114, 242):
        y = dsp.resample_subcarriers(x, n_out, subcarrier_indices=idx)
        grid = np.linspace(idx[0], idx[-1], n_out)
        want = np.array([[np.interp(grid, idx, r) for r in link] for link in x])
        assert y.shape == (4, 2, n_out)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_resample_complex_polar_on_esp32():
    rows = [r[1] for r in esp32_rows()]
    for csi, n_out in zip(rows, [56, 114, 242] * 5):
        y = dsp.resample_subcarriers(csi, n_out)
        n = csi.shape[-1]
        grid = np.linspace(0, n - 1, n_out)
        a = np.interp(grid, np.arange(n), np.abs(csi[0, 0]).astype(np.float64))
        p = np.interp(grid, np.arange(n), np.unwrap(np.angle(csi[0, 0]).astype(np.float64)))
        np.testing.assert_allclose(y[0, 0], a * np.exp(1j * p), rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- filters


FILTERS = [
    {"order": 4, "high": 10.0},
    {"order": 3, "high": 7.5},
    {"order": 5, "low": 2.0},
    {"order": 2, "low": 1.0, "high": 8.0},
    {"order": 3, "low": 0.5, "high": 20.0},
]


@pytest.mark.parametrize("spec", FILTERS)
def test_butter_design_matches_scipy(spec):
    fs = 100.0
    low, high = spec.get("low"), spec.get("high")
    if low is not None and high is not None:
        ref = scipy.signal.butter(spec["order"], [low, high], btype="band", fs=fs, output="sos")
    elif high is not None:
        ref = scipy.signal.butter(spec["order"], high, btype="low", fs=fs, output="sos")
    else:
        ref = scipy.signal.butter(spec["order"], low, btype="high", fs=fs, output="sos")
    sos = dsp.butter_sos(spec["order"], fs, low, high)
    assert sos.shape == ref.shape
    _, h = scipy.signal.sosfreqz(sos, worN=512, fs=fs)
    _, hr = scipy.signal.sosfreqz(ref, worN=512, fs=fs)
    np.testing.assert_allclose(np.abs(h), np.abs(hr), atol=1e-9)


@pytest.mark.parametrize("spec", FILTERS)
def test_butter_filter_matches_scipy(spec):
    fs = 100.0
    x = (RNG.standard_normal((400, 3, 2)) + 5.0).astype(np.float32)
    low, high = spec.get("low"), spec.get("high")
    btype = "band" if low and high else ("low" if high else "high")
    wn = [low, high] if btype == "band" else (high if high else low)
    ref = scipy.signal.butter(spec["order"], wn, btype=btype, fs=fs, output="sos")
    want = scipy.signal.sosfiltfilt(ref, x.astype(np.float64), axis=0)
    got = dsp.butter_filter(x, fs, low, high, spec["order"], zero_phase=True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    zi = scipy.signal.sosfilt_zi(ref)[:, :, None, None] * x[0].astype(np.float64)
    want_c, _ = scipy.signal.sosfilt(ref, x.astype(np.float64), axis=0, zi=zi)
    got_c = dsp.butter_filter(x, fs, low, high, spec["order"], zero_phase=False)
    np.testing.assert_allclose(got_c, want_c, rtol=1e-4, atol=1e-4)


def test_lowpass_removes_known_tone():
    fs = 100.0
    t = np.arange(1000) / fs
    slow, fast = np.sin(2 * np.pi * 1.0 * t), 0.8 * np.sin(2 * np.pi * 30.0 * t)
    y = dsp.butter_filter((slow + fast).astype(np.float32), fs, high=5.0, order=6)
    np.testing.assert_allclose(y[100:-100], slow[100:-100], atol=2e-3)


# ---------------------------------------------------------------- spectrogram


def test_spectrogram_finds_known_doppler_tone():
    fs, f0 = 200.0, -23.4375  # on the grid of nfft=256
    t = np.arange(1024) / fs
    static = 3.0 + 1.0j
    x = (static + 0.5 * np.exp(2j * np.pi * f0 * t))[:, None] * np.ones((1, 8))
    x = (x + 0.01 * rand_csi((1024, 8))).astype(np.complex64)
    power, freqs, times = dsp.doppler_spectrogram(x, fs, 128, 32, nfft=256)
    assert power.shape == (29, 256) and freqs[0] == -fs / 2
    assert np.all(freqs[np.argmax(power, axis=1)] == f0)
    np.testing.assert_allclose(times, (np.arange(29) * 32 + 64) / fs)


@pytest.mark.parametrize("cplx", [True, False])
def test_spectrogram_matches_scipy(cplx):
    fs = 100.0
    x = rand_csi((300, 2, 5)) if cplx else RNG.standard_normal((300, 2, 5)).astype(np.float32)
    power, freqs, times = dsp.doppler_spectrogram(x, fs, 64, 10, nfft=100)
    f, t, s = scipy.signal.spectrogram(
        x.astype(np.complex128 if cplx else np.float64),
        fs,
        window="hann",
        nperseg=64,
        noverlap=54,
        nfft=100,
        detrend="constant",
        return_onesided=not cplx,
        scaling="density",
        mode="psd",
        axis=0,
    )
    # scipy: (freq, 2, 5, time) -> mean over series -> (time, freq)
    want = s.mean(axis=(1, 2)).T
    if cplx:
        want, f = np.fft.fftshift(want, axes=1), np.fft.fftshift(f)
    np.testing.assert_allclose(freqs, f, atol=1e-9)
    np.testing.assert_allclose(times, t, atol=1e-9)
    np.testing.assert_allclose(power, want, rtol=2e-4, atol=1e-6 * want.max())


# ---------------------------------------------------------------- motion / presence


def test_motion_and_presence_match_numpy():
    x = (RNG.standard_normal((200, 2, 3, 10)) + 3).astype(np.float32)
    np.testing.assert_allclose(dsp.motion_statistic(x, 40, 7), ref_motion(x, 40, 7), rtol=1e-9)
    b = np.abs(x[:50].mean(0)).astype(np.float32)
    want = [
        ((x[s : s + 40].astype(np.float64).mean(0) - b) ** 2).sum()
        / (b.astype(np.float64) ** 2).sum()
        for s in range(0, 161, 7)
    ]
    np.testing.assert_allclose(dsp.presence_statistic(x, b, 40, 7), want, rtol=1e-9)


def test_motion_separates_synthetic_motion_from_static():
    rng = np.random.default_rng(1)
    n, k = 400, np.arange(30)
    static = np.exp(1j * 0.2 * k) * (1 + 0.3 * np.cos(0.4 * k))
    noise = 0.02 * rand_csi((n, 1, 2, 30), rng)
    t = np.arange(n)[:, None, None, None] / 100.0
    moving = 0.5 * np.exp(2j * np.pi * (8.0 * t + 0.05 * k))  # a reflector moving (8 Hz Doppler)
    quiet = (static + noise).astype(np.complex64)
    walk = (static + moving + noise).astype(np.complex64)
    ms = dsp.motion_statistic(dsp.normalize_amplitude(dsp.sanitize(quiet)[0]), 50, 10)
    mw = dsp.motion_statistic(dsp.normalize_amplitude(dsp.sanitize(walk)[0]), 50, 10)
    assert mw.min() > 10 * ms.max(), (mw.min(), ms.max())


# ---------------------------------------------------------------- streaming


CONFIGS = [
    {},
    {"n_subcarriers": 56, "high": 10.0, "fs": 100.0, "motion_window": 30},
    {"hampel_window": 0, "low": 1.0, "high": 20.0, "order": 2, "motion_window": 0},
    {
        "subcarrier_indices": dsp.INTEL5300_SUBCARRIERS,
        "n_subcarriers": 64,
        "hampel_window": 2,
        "n_sigmas": 2.0,
        "low": 0.5,
    },
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("with_rssi", [False, True])
def test_stream_agrees_with_batch(cfg, with_rssi):
    n = 150
    csi = rand_csi((n, 2, 2, 30))
    csi[40, 1, 0, 7] *= 30  # an outlier for the Hampel stage
    rssi = RNG.uniform(-70, -40, n).astype(np.float32) if with_rssi else None
    a, p, m = dsp.condition(csi, rssi, **cfg)
    c = dsp.Conditioner(**cfg)
    for i in range(n):
        fa, fp, fm = c.push(csi[i], None if rssi is None else float(rssi[i]))
        np.testing.assert_allclose(fa, a[i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fp, p[i], rtol=1e-5, atol=1e-5)
        if len(m):
            assert (fm is None) == np.isnan(m[i])
            if fm is not None:
                assert abs(fm - m[i]) < 1e-9
    a2, _p2, m2 = dsp.condition(csi, rssi, streaming=True, **cfg)
    np.testing.assert_allclose(a2, a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m2, m, rtol=1e-9)


def test_conditioner_batch_steps_match_individual_functions():
    csi = rand_csi((80, 1, 3, 56))
    a, _p, m = dsp.condition(
        csi, n_subcarriers=30, hampel_window=2, high=15.0, fs=100.0, motion_window=20
    )
    amp, _ph = dsp.sanitize(csi)
    amp = dsp.resample_subcarriers(dsp.normalize_amplitude(amp), 30)
    amp = dsp.butter_filter(
        dsp.hampel(amp, 2, 3.0, causal=True), 100.0, high=15.0, zero_phase=False
    )
    np.testing.assert_allclose(a, amp, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(m[19:], dsp.motion_statistic(amp, 20, 1), rtol=1e-9)
    assert np.all(np.isnan(m[:19]))


# ---------------------------------------------------------------- real recordings


def esp32_rows():
    rows = []
    for line in (DATA / "esp32_example_csi.csv").read_text().splitlines():
        if not line.startswith("CSI_DATA"):
            continue
        head, lst = line.split("[", 1)
        vals = np.array([int(v) for v in lst.strip(" ]").split()], np.float32)
        rssi = float(head.split(",")[3])
        csi = (vals[1::2] + 1j * vals[0::2]).astype(np.complex64)  # pairs are (imag, real)
        rows.append((rssi, csi[None, None, :]))
    assert len(rows) == 13 and all(r[1].shape == (1, 1, 64) for r in rows)
    return rows


def test_real_nexmon_reference_sanitize_and_conjugate():
    buf = scipy.io.loadmat(DATA / "reference" / "nexmon_bcm4358_example.matlab_csireader.mat")[
        "csi_buff"
    ]
    csi = np.fft.fftshift(buf, axes=-1).astype(np.complex64)  # (4, 256): 2 cores x 2 streams
    amp, ph = dsp.sanitize(csi)
    ra, rp = ref_sanitize(csi)
    np.testing.assert_allclose(amp, ra, rtol=1e-5)
    np.testing.assert_allclose(ph, rp, atol=1e-3)
    cp = dsp.conjugate_product(csi.reshape(2, 2, 256))
    np.testing.assert_allclose(cp[:, 0], csi[0::2] * np.conj(csi[1::2]), rtol=1e-4, atol=1e-2)
    r = dsp.resample_subcarriers(amp, 64)
    assert r.shape == (4, 64)


def load_walks():
    from wifi_densepose import read_csi

    # Our readers follow the official ones (no antenna permutation for Nrx=2).
    intel_walk = read_csi(DATA / "intel5300_walk_1590161182.dat").csi  # (n, tx, rx, 30)
    nex = read_csi(DATA / "nexmon_bcm43455c0_walk_1597159475.pcap", fftshift=True).csi
    k = np.arange(256) - 128
    keep = (np.abs(k) >= 2) & (np.abs(k) <= 122)  # VHT80 data+pilot subcarriers: 242
    nexmon_walk = np.ascontiguousarray(nex[..., keep]).astype(np.complex64)
    return intel_walk, nexmon_walk


def motion_pipeline(csi, window):
    amp, _ = dsp.sanitize(csi)
    z = dsp.normalize_amplitude(amp)
    return dsp.motion_statistic(dsp.hampel(z, 3, 3.0), window, 1)


def test_motion_on_real_walking_recordings_exceeds_static():
    from wifi_densepose import read_csi

    intel_walk, nexmon_walk = load_walks()
    assert intel_walk.shape == (152, 2, 2, 30) and nexmon_walk.shape == (343, 1, 1, 242)
    # Intel 5300 static stretch: the CSI Tool sample log, packets 0-9 (all Ntx=1), the
    # same link layout (1 tx x 2 rx x 30) and window (10 packets) as the walk.
    m = scipy.io.loadmat(DATA / "reference" / "intel5300_log.all_csi.6.7.6.matlab_read_bf_file.mat")
    st = [m["csi"][i, 0][0, 0] for i in range(10)]
    assert all(int(s["Ntx"][0, 0]) == 1 for s in st)
    intel_static = np.stack([s["csi"][0:1, 0:2, :] for s in st]).astype(np.complex64)
    ms = motion_pipeline(intel_static, 10)
    mw = motion_pipeline(intel_walk[:, :1], 10)
    assert np.median(mw) > 5 * ms.max(), (np.median(mw), ms.max())
    # Nexmon: no static nexmon recording exists here, so the static stretch is the
    # PicoScenes QCA9300 recording (1000 frames, 0.88 s, no activity documented), both
    # in windows of 0.25 s.
    pico = read_csi(DATA / "picoscenes_rx_by_qca9300.csi")
    pc = np.ascontiguousarray(pico.csi[:, :1])  # first stream, every receive antenna
    ts = pico.timestamps
    fs_pico = (len(ts) - 1) / (ts[-1] - ts[0])
    ms = motion_pipeline(pc, round(0.25 * fs_pico))
    mw = motion_pipeline(nexmon_walk, 25)  # 100 packets/s
    assert np.median(mw) > 3 * ms.max(), (np.median(mw), ms.max())


def test_align_chains_takes_out_a_real_intel_5300_s_quarter_turn_steps():
    # Every multi-antenna Intel 5300 recording in ../shared/data steps: the phase of a
    # receive chain against the first moves by a quarter turn in most packets.
    path = (Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "labelled"
            / "gi-z_csi-data" / "intel" / "respiration" / "3breaths.dat")
    csi = wdp.read_csi(path).csi_dominant()
    def changes(c):
        p = dsp.conjugate_product(c)[:, 0]  # (n, pairs, sub) of the first transmit chain
        return np.abs(np.angle((p[1:] * np.conj(p[:-1])).sum(axis=-1)))
    aligned, stepping = dsp.align_chains(csi)
    assert stepping
    assert np.median(changes(csi)) > np.pi / 4  # measured: about a quarter turn or more
    assert np.median(changes(aligned[20:])) < np.radians(10)  # measured: under 2 degrees
    # A card that does not step (the simulated Atheros) comes back unchanged.
    sim_csi = wdp.sim.generate("walk", seed=3, duration_s=2, device="atheros")["csi"]
    same, stepping = dsp.align_chains(sim_csi)
    assert not stepping and np.array_equal(same, sim_csi)


def _chain_gain_jumps_db(csi):
    power = (np.abs(csi) ** 2).mean(axis=(1, 3))  # (n, n_rx)
    rel = 10 * np.log10(power)
    rel -= rel.mean(axis=1, keepdims=True)
    return np.abs(np.diff(rel, axis=0)).max(axis=1)


def test_align_chains_holds_a_real_qca9300_s_chain_gain_steps():
    # The QCA9300 recording's receive chains change their power against each other by
    # 5 dB on the median between packets 0.12 ms apart, their shapes unchanged: gain
    # stages, not a body (benches/chain_gains.py). Once the source is seen to step, each
    # chain is held to its slow level; the phases between chains are kept.
    pico = wdp.read_csi(DATA / "picoscenes_rx_by_qca9300.csi")
    csi = np.ascontiguousarray(pico.csi[:, :1])
    held, stepping = dsp.align_chains(csi)
    assert not stepping  # no quarter turns on this card
    before, after = _chain_gain_jumps_db(csi), _chain_gain_jumps_db(held)
    assert np.median(before) > 3.0  # measured: 5.4 dB (per chain pair; here the largest)
    assert np.median(after[100:]) < 0.5  # measured: 0.01-0.03 dB
    p0 = csi[100:, 0, 1] * np.conj(csi[100:, 0, 0])
    p1 = held[100:, 0, 1] * np.conj(held[100:, 0, 0])
    assert np.allclose(np.angle(p0 * np.conj(p1)), 0, atol=1e-4)
    # The sensor reads far less change in it (motion ratio 485 -> 53 on the median).
    ts = pico.timestamps
    raw = sensing.sense(csi, ts, align_chains=False)["motion_ratio"]
    now = sensing.sense(csi, ts)["motion_ratio"]
    assert np.nanmedian(now) < np.nanmedian(raw) / 4


def test_a_body_s_shadow_on_one_antenna_is_not_a_gain_step():
    # In the simulator a body's hard-edged shadow on one receive antenna jumps that chain
    # by 3-8 dB between packets, the nearest thing to a gain step it makes (the held-out
    # day with the most, benches/chain_gains.py): the chains are left exactly as they are.
    spec = se.clip_scenario("daily", 14, 60.0)
    d = wdp.sim.generate(json.dumps(spec), seed=se.SEED_BASE + 14, duration_s=60.0,
                         device="atheros")
    assert (_chain_gain_jumps_db(d["csi"]) >= 2.5).sum() > 50  # measured: 149
    same, _ = dsp.align_chains(d["csi"])
    assert np.array_equal(same, d["csi"])

