"""Signal conditioning of WiFi CSI: numpy in, numpy out, computed in Rust.

Every function takes numpy arrays of any memory layout (C, Fortran, strided views) with
dtype ``float32`` or ``complex64`` as documented, raises ``ArgumentTypeError`` (a
``TypeError``) naming the dtype otherwise, raises :class:`DspError` (a ``ValueError``)
for bad shapes, parameters, NaN or infinities, and
releases the GIL while it computes. Time is axis 0 of batch arrays and subcarriers the
last axis; a frame is ``(n_tx, n_rx, n_sub)``. Formulas: ``docs/dsp.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from ._native import dsp as _native
from .errors import ArgumentTypeError, DspError

__all__ = [
    "INTEL5300_SUBCARRIERS",
    "Conditioner",
    "DspError",
    "align_chains",
    "antenna_pairs",
    "butter_filter",
    "butter_sos",
    "condition",
    "condition_frame",
    "conjugate_product",
    "doppler_spectrogram",
    "hampel",
    "motion_statistic",
    "normalize_amplitude",
    "presence_statistic",
    "resample_subcarriers",
    "sanitize",
]

#: Subcarrier indices of the 30 groups the Intel 5300 CSI Tool reports at 20 MHz.
INTEL5300_SUBCARRIERS = np.array(
    [
        -28,
        -26,
        -24,
        -22,
        -20,
        -18,
        -16,
        -14,
        -12,
        -10,
        -8,
        -6,
        -4,
        -2,
        -1,
        1,
        3,
        5,
        7,
        9,
        11,
        13,
        15,
        17,
        19,
        21,
        23,
        25,
        27,
        28,
    ],
    dtype=np.float32,
)

_F32 = np.dtype(np.float32)
_C64 = np.dtype(np.complex64)
_NAMES = {_F32: "float32", _C64: "complex64"}


def _array(x, func: str, name: str, allowed: tuple[np.dtype, ...]) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise ArgumentTypeError(f"{func}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in allowed:
        want = " or ".join(_NAMES[d] for d in allowed)
        raise ArgumentTypeError(
            f"{func}: {name} must have dtype {want}, got {x.dtype} "
            f"(convert with {name}.astype(np.{_NAMES[allowed[0]]}))"
        )
    return x


def _indices(ix, func: str) -> np.ndarray | None:
    if ix is None:
        return None
    return np.ascontiguousarray(np.asarray(ix, dtype=np.float64), dtype=np.float32).reshape(-1)


def antenna_pairs(n_rx: int) -> list:
    """Receive-antenna pairs ``(i, j)``, ``i < j``, in the order of :func:`conjugate_product`."""
    return list(combinations(range(n_rx), 2))


def sanitize(csi: np.ndarray, subcarrier_indices=None) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and sanitized phase of complex64 CSI.

    ``csi`` is a frame ``(n_tx, n_rx, n_sub)`` or a batch ``(n, n_tx, n_rx, n_sub)`` (any
    leading shape works; the last axis is subcarriers). Per link the phase is unwrapped
    along subcarriers (as ``numpy.unwrap``) and the least-squares line ``a*m_k + b`` over
    the subcarrier positions ``m_k`` (``subcarrier_indices``, default ``0..n_sub``) is
    subtracted, removing the timing-offset slope and the carrier-offset constant.
    Returns ``(amplitude, phase)``, both float32 of the input's shape.
    """
    csi = _array(csi, "sanitize", "csi", (_C64,))
    return _native.sanitize(csi, _indices(subcarrier_indices, "sanitize"))


def condition_frame(csi: np.ndarray, rssi=None, subcarrier_indices=None):
    """The stateless per-frame conditioning in one call: ``(normalized amplitude, phase)``.

    Equal to ``a, p = sanitize(csi, subcarrier_indices); normalize_amplitude(a, rssi), p``
    without the intermediate array; ``csi`` complex64 frame or batch.
    """
    # The common case first, kept short: one frame costs about 3 us in all.
    if (
        rssi is None
        and subcarrier_indices is None
        and type(csi) is np.ndarray
        and (csi.dtype is _C64 or csi.dtype == _C64)
    ):
        return _native.condition_frame(csi)
    if type(csi) is not np.ndarray or csi.dtype != _C64:
        _array(csi, "condition_frame", "csi", (_C64,))
    r = None
    if rssi is not None:
        r = np.ascontiguousarray(np.asarray(rssi, dtype=np.float64).reshape(-1), dtype=np.float32)
    ix = None if subcarrier_indices is None else _indices(subcarrier_indices, "condition_frame")
    return _native.condition_frame(csi, r, ix)


def align_chains(csi: np.ndarray) -> tuple[np.ndarray, bool]:
    """A recording's frames ``(n, n_tx, n_rx, n_sub)`` (complex64, in order) with the
    receive chains' quarter-turn phase steps taken out and their gain steps held, and
    whether the frames stepped by quarter turns.

    Some cards turn each receive chain after the first by a random multiple of a quarter
    turn in every packet (every multi-antenna Intel 5300 recording in ``../shared/data``;
    ``docs/sensing.md``, "Real Intel 5300 cards"). Phases between antennas
    (:func:`conjugate_product`, angle of arrival) mean nothing until the steps are out.
    Others switch each receive chain's gain by decibels from packet to packet (the Atheros
    and QCA9300 recordings there; "Receive chains' gain steps"): once a source is seen to,
    each chain is scaled to its slow level against the others, phases untouched. This is
    what the sensor, the localizer and the window features do to every source; frames that
    step in neither way come back unchanged.
    """
    csi = _array(csi, "align_chains", "csi", (_C64,))
    if csi.ndim != 4:
        raise DspError(f"align_chains: csi must be (n, n_tx, n_rx, n_sub), got shape {csi.shape}")
    return _native.align_chains(csi)


def conjugate_product(csi: np.ndarray) -> np.ndarray:
    """``H_i * conj(H_j)`` for receive antennas ``i < j`` (axis -2), complex64.

    ``(..., n_rx, n_sub)`` in, ``(..., n_rx*(n_rx-1)/2, n_sub)`` out, pairs in the order
    of :func:`antenna_pairs`. Offsets common to the receive chains of one card cancel;
    quarter-turn steps of single chains (Intel 5300) do not: :func:`align_chains` first.
    """
    csi = _array(csi, "conjugate_product", "csi", (_C64,))
    return _native.conjugate_product(csi)


def hampel(
    x: np.ndarray,
    window: int = 3,
    n_sigmas: float = 3.0,
    causal: bool = False,
    return_count: bool = False,
):
    """Hampel outlier filter along axis 0 (time) of float32 ``x``.

    ``window`` is the half-width ``k``: a sample is judged against the ``2k+1`` samples
    centred on it (``causal=False``) or ending at it (``causal=True``), truncated at the
    record's ends. It is replaced by the window median when it lies more than
    ``n_sigmas * 1.4826 * MAD`` from it. With ``return_count`` also returns how many
    samples were replaced.
    """
    x = _array(x, "hampel", "x", (_F32,))
    y, n = _native.hampel(x, int(window), float(n_sigmas), bool(causal))
    return (y, n) if return_count else y


def normalize_amplitude(amp: np.ndarray, rssi=None) -> np.ndarray:
    """Remove per-packet gain (AGC) from amplitudes (float32, or complex64 CSI: ``|csi|``).

    With ``rssi`` (dBm; a number for a frame ``(n_tx, n_rx, n_sub)``, one per frame for a
    batch ``(n, n_tx, n_rx, n_sub)``) each frame is scaled so its mean power is
    ``10**(rssi/10)`` mW. Without it, every link gets a robust z-score across subcarriers,
    ``(a - median) / (1.4826 * MAD)``.
    """
    amp = _array(amp, "normalize_amplitude", "amp", (_F32, _C64))
    if amp.dtype == _C64:
        amp = np.abs(amp)
    r = None
    if rssi is not None:
        r = np.ascontiguousarray(np.asarray(rssi, dtype=np.float64).reshape(-1), dtype=np.float32)
    return _native.normalize_amplitude(amp, r)


def resample_subcarriers(csi: np.ndarray, n_out: int, subcarrier_indices=None) -> np.ndarray:
    """Interpolate the last axis onto ``n_out`` equally spaced subcarriers.

    The output grid spans the input's first to last subcarrier position
    (``subcarrier_indices``, default ``0..n_sub``). float32 input is interpolated linearly
    (as ``numpy.interp``); complex64 input in polar form (amplitude and unwrapped phase
    separately). The output has the input's dtype.
    """
    csi = _array(csi, "resample_subcarriers", "csi", (_C64, _F32))
    ix = _indices(subcarrier_indices, "resample_subcarriers")
    if csi.dtype == _C64:
        return _native.resample_complex(csi, int(n_out), ix)
    return _native.resample_real(csi, int(n_out), ix)


def butter_sos(
    order: int, fs: float, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """Butterworth second-order sections ``(n_sections, 6)`` (float64), as ``scipy.signal.butter``.

    ``high`` only: low-pass; ``low`` only: high-pass; both: band-pass (Hz).
    """
    return _native.butter_sos(int(order), float(fs), _opt(low), _opt(high))


def _opt(v):
    return None if v is None else float(v)


def butter_filter(
    x: np.ndarray,
    fs: float,
    low: float | None = None,
    high: float | None = None,
    order: int = 4,
    zero_phase: bool = True,
) -> np.ndarray:
    """Butterworth filtering along axis 0 (time) of float32 ``x``.

    ``zero_phase=True`` (offline) is forward-backward filtering as
    ``scipy.signal.sosfiltfilt``; ``zero_phase=False`` (live) is causal, starting from the
    steady state of the first sample (``sosfilt(sos, x, zi=sosfilt_zi(sos) * x[0])``).
    """
    x = _array(x, "butter_filter", "x", (_F32,))
    return _native.butter_filter(x, float(fs), _opt(low), _opt(high), int(order), bool(zero_phase))


def doppler_spectrogram(
    x: np.ndarray, fs: float, window: int, hop: int, nfft: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STFT power over time (axis 0), averaged over every other axis.

    Each window of ``window`` frames (every ``hop``) has its mean removed, a periodic Hann
    window applied, is zero-padded to ``nfft`` and transformed; the power is scaled as a
    density (``/ (fs * sum(w**2))``). complex64 input gives a two-sided spectrum with
    frequencies ascending from ``-fs/2``; float32 input a one-sided one. Returns
    ``(power (n_windows, n_freqs) float32, freqs (Hz), times (s, window centres))``.
    """
    x = _array(x, "doppler_spectrogram", "x", (_C64, _F32))
    n = None if nfft is None else int(nfft)
    if x.dtype == _C64:
        return _native.spectrogram_complex(x, float(fs), int(window), int(hop), n)
    return _native.spectrogram_real(x, float(fs), int(window), int(hop), n)


def motion_statistic(x: np.ndarray, window: int, hop: int = 1) -> np.ndarray:
    """Share of each window's feature energy that varies over time (float64, in [0, 1]).

    ``M = sum_f sum_t (x[t,f] - mean_t x[:,f])**2 / sum_f sum_t x[t,f]**2`` over windows of
    ``window`` frames of float32 ``x`` (time on axis 0), one every ``hop`` frames.
    """
    x = _array(x, "motion_statistic", "x", (_F32,))
    return _native.motion_statistic(x, int(window), int(hop))


def presence_statistic(
    x: np.ndarray, baseline: np.ndarray, window: int, hop: int = 1
) -> np.ndarray:
    """Distance of each window's mean profile from an empty-room ``baseline`` (float64).

    ``P = sum_f (mean_t x[:,f] - b[f])**2 / sum_f b[f]**2``; ``baseline`` has the shape of
    one frame of ``x``.
    """
    x = _array(x, "presence_statistic", "x", (_F32,))
    baseline = _array(baseline, "presence_statistic", "baseline", (_F32,))
    return _native.presence_statistic(x, baseline, int(window), int(hop))


# The conditioner's settings. `condition` and `Conditioner` spell them out with their
# defaults (their signatures are the API); the engine reads this dict (src/python/dsp.rs,
# `Settings`: int()/float() conversion, unknown names refused, ranges checked).
_SETTINGS = (
    "subcarrier_indices",
    "n_subcarriers",
    "hampel_window",
    "n_sigmas",
    "fs",
    "low",
    "high",
    "order",
    "motion_window",
)


def _config(arguments: dict) -> dict:
    """The settings among a call's ``locals()``, as the engine takes them."""
    cfg = {name: arguments[name] for name in _SETTINGS}
    cfg["subcarrier_indices"] = _indices(cfg["subcarrier_indices"], "Conditioner")
    return cfg


def condition(
    csi: np.ndarray,
    rssi: None | Sequence[float] | np.ndarray = None,
    *,
    subcarrier_indices=None,
    n_subcarriers: int | None = None,
    hampel_window: int = 3,
    n_sigmas: float = 3.0,
    fs: float = 100.0,
    low: float | None = None,
    high: float | None = None,
    order: int = 4,
    motion_window: int = 50,
    streaming: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Condition a whole recording ``(n, n_tx, n_rx, n_sub)`` complex64.

    The steps of :class:`Conditioner` (sanitize, normalize, resample, causal Hampel, causal
    Butterworth, motion) with the batch functions; ``streaming=True`` runs a
    :class:`Conditioner` frame by frame instead (the results agree). Returns amplitude and
    phase ``(n, n_tx, n_rx, n_out)`` float32 and the motion statistic per frame (NaN
    before ``motion_window`` frames; empty when ``motion_window=0``).
    """
    cfg = _config(locals())
    csi = _array(csi, "condition", "csi", (_C64,))
    r = (
        None
        if rssi is None
        else np.ascontiguousarray(np.asarray(rssi, dtype=np.float64).reshape(-1), dtype=np.float32)
    )
    return _native.condition(csi, r, cfg, bool(streaming))


class Conditioner:
    """Frame-by-frame conditioning with bounded state.

    Per frame ``(n_tx, n_rx, n_sub)`` complex64: sanitize; normalize amplitude (by
    ``rssi`` if given, robust z-score otherwise); resample to ``n_subcarriers`` if set;
    causal Hampel over the last ``2*hampel_window+1`` frames (0 turns it off); causal
    Butterworth at ``fs`` with ``low``/``high`` if either is set; motion statistic of
    the amplitude over the last ``motion_window`` frames (0 turns it off).
    ``push`` returns ``(amplitude, phase, motion or None)``.
    """

    def __init__(
        self,
        *,
        subcarrier_indices=None,
        n_subcarriers: int | None = None,
        hampel_window: int = 3,
        n_sigmas: float = 3.0,
        fs: float = 100.0,
        low: float | None = None,
        high: float | None = None,
        order: int = 4,
        motion_window: int = 50,
    ) -> None:
        self._inner = _native.Conditioner(_config(locals()))

    def push(self, csi: np.ndarray, rssi: float | None = None):
        """Condition one frame; ``rssi`` in dBm where the format gives it."""
        if type(csi) is not np.ndarray or csi.dtype != _C64:
            _array(csi, "Conditioner.push", "csi", (_C64,))
        return self._inner.push(csi, None if rssi is None else float(rssi))

    def reset(self) -> None:
        """Forget every frame (and the frame shape) seen so far."""
        self._inner.reset()
