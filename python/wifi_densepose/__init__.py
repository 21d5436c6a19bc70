"""WiFi-DensePose: WiFi CSI in, live pose, tracks, activities and occupancy out.

The engine is Rust (``wifi_densepose._native``); this package is its Python face::

    import wifi_densepose as wdp

    with wdp.Server() as server:
        token = server.issue_token("me")
        server.on("activity_event", print)
        server.publish("system_event", {"event": "hello"})

    rec = wdp.read_csi("walk.dat")   # Intel 5300, Atheros, Nexmon, ESP32, PicoScenes
"""

from . import dsp, sim
from ._native import (
    CsiFormatError,
    CsiFormatWarning,
    CsiFrame,
    Recording,
    __version__,
    decode_udp_frame,
    read_csi,
)
from .client import (
    Client,
    ConnectionLost,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ResumeFailed,
    SubscriptionError,
    SyncClient,
)
from .messages import Message
from .model import Model, ModelLoadError
from .server import EVENT_TYPES, Server

__all__ = [
    "EVENT_TYPES",
    "Client",
    "ConnectionLost",
    "CsiFormatError",
    "CsiFormatWarning",
    "CsiFrame",
    "Message",
    "Model",
    "ModelLoadError",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "Recording",
    "ResumeFailed",
    "Server",
    "SubscriptionError",
    "SyncClient",
    "__version__",
    "decode_udp_frame",
    "dsp",
    "read_csi",
    "sim",
]
