"""Typed stub of ``wifi_densepose._native.dsp`` (src/python/dsp.rs). The friendly, checked
API over these is ``wifi_densepose.dsp``; arrays here must already have the right dtype."""

from typing import TypeAlias, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Conditioner",
    "_call_floor",
    "_io_floor",
    "align_chains",
    "butter_filter",
    "butter_sos",
    "condition",
    "condition_frame",
    "conjugate_product",
    "hampel",
    "motion_statistic",
    "normalize_amplitude",
    "presence_statistic",
    "resample_complex",
    "resample_real",
    "sanitize",
    "spectrogram_complex",
    "spectrogram_real",
]

_F32: TypeAlias = NDArray[np.float32]
_C64: TypeAlias = NDArray[np.complex64]

# The conditioner's settings by name (``wifi_densepose.dsp._SETTINGS``; a missing one is
# the engine's default, an unknown one a TypeError).
_Settings: TypeAlias = dict[str, object]

def _call_floor() -> None: ...
def _io_floor(csi: _C64) -> tuple[_F32, _F32]: ...
def sanitize(csi: _C64, subcarrier_indices: _F32 | None = None) -> tuple[_F32, _F32]: ...
def condition_frame(
    csi: _C64, rssi: _F32 | None = None, subcarrier_indices: _F32 | None = None
) -> tuple[_F32, _F32]: ...
def align_chains(csi: _C64) -> tuple[_C64, bool]: ...
def conjugate_product(csi: _C64) -> _C64: ...
def hampel(x: _F32, window: int, n_sigmas: float, causal: bool) -> tuple[_F32, int]: ...
def normalize_amplitude(amp: _F32, rssi: _F32 | None = None) -> _F32: ...
def resample_complex(
    csi: _C64, n_out: int, subcarrier_indices: _F32 | None = None
) -> _C64: ...
def resample_real(x: _F32, n_out: int, subcarrier_indices: _F32 | None = None) -> _F32: ...
def butter_sos(
    order: int, fs: float, low: float | None = None, high: float | None = None
) -> NDArray[np.float64]: ...
def butter_filter(
    x: _F32, fs: float, low: float | None, high: float | None, order: int, zero_phase: bool
) -> _F32: ...
def spectrogram_complex(
    x: _C64, fs: float, window: int, hop: int, nfft: int | None = None
) -> tuple[_F32, NDArray[np.float64], NDArray[np.float64]]: ...
def spectrogram_real(
    x: _F32, fs: float, window: int, hop: int, nfft: int | None = None
) -> tuple[_F32, NDArray[np.float64], NDArray[np.float64]]: ...
def motion_statistic(x: _F32, window: int, hop: int) -> NDArray[np.float64]: ...
def presence_statistic(
    x: _F32, baseline: _F32, window: int, hop: int
) -> NDArray[np.float64]: ...
def condition(
    csi: _C64,
    rssi: _F32 | None = None,
    settings: _Settings | None = None,
    streaming: bool = False,
) -> tuple[_F32, _F32, NDArray[np.float64]]: ...
@final
class Conditioner:
    def __new__(cls, settings: _Settings | None = None) -> Conditioner: ...
    def push(self, csi: _C64, rssi: float | None = None) -> tuple[_F32, _F32, float | None]: ...
    def reset(self) -> None: ...
