"""Typed stub of the native module (kept in step with src/python/; checked against the
built module by ``python -m mypy.stubtest wifi_densepose`` in scripts/test.sh). A package
of stubs because the module has a submodule, ``dsp`` (``dsp.pyi`` beside this file)."""

import os
from collections.abc import Awaitable, Callable
from typing import Any, Self, final

import numpy as np
from numpy.typing import NDArray

from . import dsp as dsp

# pyo3 keeps the module's __all__: every name added to it, in the order added.
__all__ = [
    "ACTIVITIES",
    "EVENT_TYPES",
    "ArgumentTypeError",
    "ConfigError",
    "CsiFormatError",
    "CsiFormatWarning",
    "CsiFrame",
    "CsiReadError",
    "DspError",
    "InferenceError",
    "InvalidArgumentError",
    "ModelLoadError",
    "NativeModel",
    "OutOfBoundsError",
    "PathNotFoundError",
    "Recording",
    "Replay",
    "SerialListener",
    "Server",
    "ServerError",
    "SimulationError",
    "UdpListener",
    "WiFiDensePoseError",
    "__version__",
    "analyze_array",
    "analyze_nodes",
    "analyze_recording",
    "decode_udp_frame",
    "dsp",
    "live_windows",
    "localize",
    "localize_links",
    "model_init_runtime",
    "read_csi",
    "rest_posture_features",
    "run_analytics",
    "sense",
    "sim_devices",
    "sim_generate",
    "sim_scenario",
    "sim_scenarios",
    "sim_spec",
    "walking_features",
    "window_features",
]

__version__: str

# The vocabulary (src/python/vocabulary.rs).
ACTIVITIES: tuple[str, ...]
EVENT_TYPES: tuple[str, ...]

# The exception hierarchy (src/python/errors.rs; python/wifi_densepose/errors.py lists it).
class WiFiDensePoseError(Exception): ...
class InvalidArgumentError(WiFiDensePoseError, ValueError): ...
class ArgumentTypeError(WiFiDensePoseError, TypeError): ...
class OutOfBoundsError(WiFiDensePoseError, IndexError): ...
class PathNotFoundError(WiFiDensePoseError, FileNotFoundError): ...
class CsiReadError(WiFiDensePoseError, OSError): ...
class CsiFormatError(WiFiDensePoseError, ValueError): ...
class DspError(WiFiDensePoseError, ValueError): ...
class SimulationError(WiFiDensePoseError, ValueError): ...
class ModelLoadError(WiFiDensePoseError, RuntimeError): ...
class InferenceError(WiFiDensePoseError, RuntimeError): ...
class ServerError(WiFiDensePoseError, RuntimeError): ...
class ConfigError(WiFiDensePoseError, ValueError): ...

# pyo3 classes cannot be subclassed: each is @final.
@final
class Server:
    def __new__(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        jwt_secret: str | None = None,
        jwt_public_key: str | None = None,
        jwt_algorithm: str = "HS256",
        config: dict[str, Any] | None = None,
    ) -> Self: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def running(self) -> bool: ...
    @property
    def url(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def dispatch_errors(self) -> int: ...
    def issue_token(
        self, subject: str, environments: list[str] | None = None, ttl_s: int = 3600
    ) -> str: ...
    def add_environment(self, environment_id: str, device: str | None = None) -> None: ...
    def inject_csi(
        self,
        environment_id: str,
        csi: Any,
        timestamps: list[float] | None = None,
        receiver: str | None = None,
    ) -> int: ...
    def replay(
        self, environment_id: str, path: str, speed: float = 1.0, format: str | None = None
    ) -> Replay: ...
    def listen_udp(
        self,
        nodes: dict[int, str],
        port: int = 0,
        host: str = "127.0.0.1",
        macs: dict[str, str] | None = None,
        senders: dict[str, str] | None = None,
    ) -> UdpListener: ...
    def listen_serial(
        self, port: str | os.PathLike[str], baud: int, environment_id: str, mac: str | None = None
    ) -> SerialListener: ...
    def simulate(
        self,
        environment_id: str,
        scenario: str = "walk",
        seed: int = 0,
        duration_s: float | None = None,
        device: str | None = None,
        speed: float = 1.0,
        repeat: bool = False,
        oracle: bool = False,
    ) -> Replay: ...
    def environment_stats(self, environment_id: str) -> dict[str, Any]: ...
    def calibrate(self, environment_id: str, seconds: float, timeout_s: float) -> dict[str, Any]: ...
    def set_calibration(
        self, environment_id: str, calibration: dict[str, Any] | None = None
    ) -> None: ...
    def set_model(self, model: NativeModel | None, rate_hz: float = 30.0) -> None: ...
    def model_info(self) -> dict[str, Any] | None: ...
    def set_room(self, environment_id: str, width_m: float, depth_m: float) -> None: ...
    def set_placement(
        self,
        environment_id: str,
        device: str | None,
        placement: dict[str, Any] | None,
        room: tuple[float, float],
        source: str | None = None,
    ) -> None: ...
    def configure(self, changes: dict[str, Any], applied_by: str = "python") -> dict[str, Any]: ...
    def environments(self) -> list[str]: ...
    def publish(
        self, event_type: str, data: dict[str, Any], environment_id: str | None = None
    ) -> None: ...
    def set_dispatcher(
        self, event_types: list[str], dispatch: Callable[[str, dict[str, Any]], Any]
    ) -> None: ...
    def metrics_text(self) -> str: ...
    def claim_environment(self, environment_id: str) -> bool: ...
    def release_environment(self, environment_id: str) -> None: ...
    def lease_holder(self, environment_id: str) -> str | None: ...
    def holds_lease(self, environment_id: str) -> bool: ...
    @property
    def node_id(self) -> str | None: ...
    def broker_status(self) -> dict[str, Any] | None: ...

@final
class Replay:
    @property
    def path(self) -> str: ...
    @property
    def total(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def progress(self) -> float: ...
    @property
    def done(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def file_errors(self) -> list[str]: ...
    def stop(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def wait_async(self, timeout: float | None = None) -> Awaitable[bool]: ...

@final
class UdpListener:
    port: int
    def stats(self) -> dict[str, int]: ...
    @property
    def last_error(self) -> str | None: ...

@final
class SerialListener:
    @property
    def port(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    def stats(self) -> dict[str, int]: ...
    @property
    def last_error(self) -> str | None: ...
    def stop(self) -> None: ...
    @property
    def stopped(self) -> bool: ...

class CsiFormatWarning(UserWarning): ...

@final
class CsiFrame:
    @property
    def csi(self) -> NDArray[np.complex64]: ...
    @property
    def shape(self) -> tuple[int, int, int]: ...
    @property
    def timestamp(self) -> float: ...
    @property
    def rssi(self) -> float | None: ...
    @property
    def noise(self) -> float | None: ...
    @property
    def format(self) -> str: ...
    @property
    def channel(self) -> int | None: ...
    @property
    def bandwidth_mhz(self) -> int | None: ...
    @property
    def sequence(self) -> int | None: ...
    @property
    def meta(self) -> dict[str, Any]: ...
    def scaled_csi(self) -> NDArray[np.complex128]: ...

@final
class Recording:
    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> CsiFrame: ...
    def __iter__(self) -> Any: ...
    @property
    def path(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def errors(self) -> list[str]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_summary(self) -> str | None: ...
    @property
    def error_offsets(self) -> list[int]: ...
    @property
    def shapes(self) -> list[tuple[int, int, int]]: ...
    @property
    def timestamps(self) -> NDArray[np.float64]: ...
    @property
    def rssi(self) -> NDArray[np.float64]: ...
    @property
    def noise(self) -> NDArray[np.float64]: ...
    @property
    def csi(self) -> NDArray[np.complex64]: ...
    @property
    def shape_counts(self) -> list[tuple[tuple[int, int, int], int]]: ...
    @property
    def dominant_shape(self) -> tuple[int, int, int] | None: ...
    @property
    def dominant_indices(self) -> NDArray[np.int64]: ...
    def csi_dominant(self) -> NDArray[np.complex64]: ...

def read_csi(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    nexmon_chip: str | None = None,
    bandwidth: int | None = None,
    fftshift: bool = False,
    scaled: bool = False,
    endianness: str | None = None,
    antenna_order: bool = False,
) -> Recording: ...
def decode_udp_frame(datagram: bytes, source: str = "udp") -> tuple[int, CsiFrame]: ...

def sim_scenarios() -> list[str]: ...
def sim_devices() -> list[str]: ...
def sim_spec(
    scenario: str,
    seed: int | None = None,
    duration_s: float | None = None,
    device: str | None = None,
    fps: float | None = None,
) -> str: ...
def sim_scenario(name: str, duration_s: float = 10.0) -> str: ...
def localize(
    csi: NDArray[np.complex64],
    timestamps: NDArray[np.float64],
    room: tuple[float, float, float] | list[float],
    tx: NDArray[np.float64],
    rx: NDArray[np.float64],
    freqs_hz: NDArray[np.float64],
    moving: NDArray[np.bool_] | None = None,
    grid_step_m: float = 0.2,
    window_packets: int = 25,
    max_subcarriers: int = 10,
    fit_reflections: bool = True,
    window_highpass: bool = True,
    continuity_m: float = 0.0,
    track_speed_mps: float = 0.0,
    pair_normalize: bool = False,
    frame_normalize: bool = False,
    maps: bool = False,
    lobes: int = 0,
    lobe_radius_m: float = 0.3,
) -> dict[str, NDArray[np.float64]]: ...
def localize_links(
    links: list[dict[str, Any]],
    room: tuple[float, float, float] | list[float],
    grid_step_m: float = 0.2,
    window_packets: int = 25,
    max_subcarriers: int = 10,
    track_speed_mps: float = 0.0,
    max_age_s: float = 0.5,
    lobes: int = 0,
    lobe_radius_m: float = 0.3,
) -> dict[str, NDArray[np.float64]]: ...
def sense(
    csi: NDArray[np.complex64],
    timestamps: NDArray[np.float64],
    calibrate_s: float | None = None,
    calibration: dict[str, Any] | None = None,
    align_chains: bool = True,
    channel: int | None = None,
) -> dict[str, Any]: ...
def window_features(
    csi: NDArray[np.complex64],
    timestamps: NDArray[np.float64],
    window_s: float,
    hop_s: float,
) -> dict[str, Any]: ...
def sim_generate(
    scenario: str,
    seed: int | None = None,
    duration_s: float | None = None,
    device: str | None = None,
    fps: float | None = None,
    dense_pose_grid: int = 32,
    threads: int = 0,
) -> dict[str, Any]: ...


def run_analytics(
    times: np.ndarray,
    keypoints: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    activity: np.ndarray,
    room_size: tuple[float, float] = (6.0, 5.0),
    window_s: float = 60.0,
) -> list[tuple[str, str]]: ...
def rest_posture_features(
    times: np.ndarray,
    motion: np.ndarray,
    level: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> list[tuple[float, list[float], list[float]]]: ...
def walking_features(
    times: np.ndarray,
    motion: np.ndarray,
    level: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> list[tuple[float, list[float], float]]: ...
def model_init_runtime(lib_path: str | os.PathLike[str]) -> None: ...
def live_windows(csi: np.ndarray) -> np.ndarray: ...

@final
class NativeModel:
    @staticmethod
    def load(path: str | os.PathLike[str], threads: int = 1, device: str = "cpu") -> NativeModel: ...
    @property
    def version(self) -> str: ...
    @property
    def slots(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def has_dense_pose(self) -> bool: ...
    @property
    def kind(self) -> str: ...
    @property
    def classes(self) -> list[str]: ...
    @property
    def window(self) -> tuple[float, float] | None: ...
    def predict(self, windows: NDArray[np.float32]) -> dict[str, Any]: ...
    def classify(self, features: NDArray[np.float32]) -> NDArray[np.float32]: ...

def analyze_recording(
    recording: Recording,
    *,
    model: NativeModel | None = None,
    room: tuple[float, float] | None = None,
    device: str | None = None,
    placement: dict[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    environment_id: str = ...,
    calibration: dict[str, Any] | None = None,
) -> list[dict[str, Any]]: ...
def analyze_nodes(
    csi: list[NDArray[np.complex64]],
    timestamps: list[NDArray[np.float64]],
    sources: list[str],
    order: NDArray[np.uint64],
    *,
    end_reason: str = ...,
    model: NativeModel | None = None,
    room: tuple[float, float] | None = None,
    device: str | None = None,
    progress: Callable[[int, int], Any] | None = None,
    environment_id: str = ...,
    placements: list[dict[str, Any]] | None = None,
    calibration: dict[str, Any] | None = None,
) -> list[dict[str, Any]]: ...
def analyze_array(
    csi: NDArray[np.complex64],
    timestamps: NDArray[np.float64],
    *,
    sequence: NDArray[np.uint64] | None = None,
    rssi: NDArray[np.float32] | None = None,
    simulated: bool = False,
    source: str = "inject",
    end_reason: str = "input finished",
    model: NativeModel | None = None,
    room: tuple[float, float] | None = None,
    device: str | None = None,
    placement: dict[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    environment_id: str = ...,
    calibration: dict[str, Any] | None = None,
) -> list[dict[str, Any]]: ...
