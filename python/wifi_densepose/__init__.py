"""WiFi-DensePose: WiFi CSI in, live pose, tracks, activities and occupancy out.

The engine is Rust (``wifi_densepose._native``); this package is its Python face::

    import wifi_densepose as wdp

    with wdp.Server() as server:
        token = server.issue_token("me")
        server.on("activity_event", print)
        server.publish("system_event", {"event": "hello"})

    rec = wdp.read_csi("walk.dat")   # Intel 5300, Atheros, Nexmon, ESP32, PicoScenes
    messages = wdp.analyze(rec)      # the live pipeline over a recording, as fast as it goes

Every exception the package raises is a :class:`WiFiDensePoseError` (and still the
built-in it always was: ``ValueError``, ``OSError``...); ``wifi_densepose.errors`` lists
them.
"""

from . import dsp, errors, sensing, sim
from ._native import (
    ACTIVITIES,
    EVENT_TYPES,
    CsiFormatWarning,
    CsiFrame,
    Recording,
    __version__,
    decode_udp_frame,
    read_csi,
)
from .analyze import analyze
from .client import Client, SyncClient
from .errors import (
    ArgumentTypeError,
    ConfigError,
    ConnectionLost,
    CsiFormatError,
    CsiReadError,
    DspError,
    InferenceError,
    InvalidArgumentError,
    LabelsError,
    ModelLoadError,
    OutOfBoundsError,
    PathNotFoundError,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ResumeFailed,
    ServerError,
    SimulationError,
    SubscriptionError,
    UsageError,
    WaitTimeoutError,
    WiFiDensePoseError,
)
from .messages import Message
from .model import Model
from .server import Server
from .training import evaluate_labelled, train

__all__ = [
    "ACTIVITIES",
    "EVENT_TYPES",
    "ArgumentTypeError",
    "Client",
    "ConfigError",
    "ConnectionLost",
    "CsiFormatError",
    "CsiFormatWarning",
    "CsiFrame",
    "CsiReadError",
    "DspError",
    "InferenceError",
    "InvalidArgumentError",
    "LabelsError",
    "Message",
    "Model",
    "ModelLoadError",
    "OutOfBoundsError",
    "PathNotFoundError",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "Recording",
    "ResumeFailed",
    "Server",
    "ServerError",
    "SimulationError",
    "SubscriptionError",
    "SyncClient",
    "UsageError",
    "WaitTimeoutError",
    "WiFiDensePoseError",
    "__version__",
    "analyze",
    "decode_udp_frame",
    "dsp",
    "errors",
    "evaluate_labelled",
    "read_csi",
    "sensing",
    "sim",
    "train",
]
