"""WiFi-DensePose: WiFi CSI in, live pose, tracks, activities and occupancy out.

The engine is Rust (``wifi_densepose._native``); this package is its Python face::

    import wifi_densepose as wdp

    with wdp.Server() as server:
        token = server.issue_token("me")
        server.on("activity_event", print)
        server.publish("system_event", {"event": "hello"})
"""

from ._native import __version__
from .client import (
    Client,
    ConnectionLost,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ResumeFailed,
    SubscriptionError,
)
from .server import EVENT_TYPES, Server

__all__ = [
    "__version__",
    "Client",
    "ConnectionLost",
    "EVENT_TYPES",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "ResumeFailed",
    "Server",
    "SubscriptionError",
]
