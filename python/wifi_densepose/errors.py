"""Every exception wifi_densepose raises, in one hierarchy.

``except wdp.WiFiDensePoseError`` catches whatever the package refused or failed at. Each
class is also the built-in exception that describes the failure, so ``except ValueError``
(or ``OSError``, ``RuntimeError``...) keeps working::

    WiFiDensePoseError(Exception)
    ├── InvalidArgumentError(ValueError)    a value given to a call is not acceptable
    │   ├── UsageError                      a command line that cannot be run (exit code 2)
    │   └── LabelsError                     a LABELS.csv row or column that cannot be used
    ├── ArgumentTypeError(TypeError)        a value of the wrong type or numpy dtype
    ├── OutOfBoundsError(IndexError)        an index past the end (a Recording's frames)
    ├── PathNotFoundError(FileNotFoundError)  a file named in a call does not exist
    ├── CsiReadError(OSError)               the operating system could not read a CSI file
    ├── CsiFormatError(ValueError)          a CSI file that cannot be decoded
    ├── DspError(ValueError)                signal conditioning refused its input
    ├── SimulationError(ValueError)         a scenario the simulator cannot run
    ├── ModelLoadError(RuntimeError)        ONNX Runtime or a model cannot be loaded
    ├── InferenceError(RuntimeError)        a loaded model failed while running
    ├── ServerError(RuntimeError)           the server cannot do this now
    ├── ConfigError(ValueError)             a configuration that is not valid
    ├── ProtocolError                       an ``error`` message from the server (the client)
    │   ├── SubscriptionError, RateLimited, PermissionDenied, ResumeFailed
    │   └── ConnectionLost
    └── WaitTimeoutError(TimeoutError)      nothing came in time (Client.recv, a request's
                                            answer, the test helpers)

The classes the engine raises are defined in Rust (``wifi_densepose._native``); the ones
only Python code raises are defined here on the same base. Each is also importable where
it was before this module existed (``wifi_densepose.client.ProtocolError``,
``wifi_densepose.config.ConfigError``, ``wifi_densepose.cli.UsageError``...).
"""

from __future__ import annotations

import json

from ._native import (
    ArgumentTypeError,
    ConfigError,
    CsiFormatError,
    CsiReadError,
    DspError,
    InferenceError,
    InvalidArgumentError,
    ModelLoadError,
    OutOfBoundsError,
    PathNotFoundError,
    ServerError,
    SimulationError,
    WiFiDensePoseError,
)


class UsageError(InvalidArgumentError):
    """A command line that cannot be run as given (exit code 2)."""


class LabelsError(InvalidArgumentError):
    """A LABELS.csv that cannot be used; ``row`` (1 = the header) and ``column`` say where."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.row = row
        self.column = column


class WaitTimeoutError(WiFiDensePoseError, TimeoutError):
    """Nothing came in time: ``Client.recv(timeout=...)``, the answer to a request, or
    what a test helper (``wifi_densepose.testing``) waited for."""


class ProtocolError(WiFiDensePoseError):
    """An ``error`` message from the server."""

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(f"{code}: {message} {json.dumps(details or {})}")
        self.code = code
        self.message = message
        self.details = details or {}


class SubscriptionError(ProtocolError):
    """SUBSCRIPTION_ERROR: ``details['field']`` names what was wrong."""


class RateLimited(ProtocolError):
    """RATE_LIMIT_EXCEEDED: retry after ``retry_after`` seconds."""

    @property
    def retry_after(self) -> float:
        return float(self.details.get("retry_after", 1))


class PermissionDenied(ProtocolError):
    """PERMISSION_DENIED: the token does not grant what was asked."""


class ResumeFailed(ProtocolError):
    """RESUME_FAILED: the session could not be resumed."""


class ConnectionLost(ProtocolError):
    """The connection ended and was not (or could not be) re-established."""


__all__ = [
    "ArgumentTypeError",
    "ConfigError",
    "ConnectionLost",
    "CsiFormatError",
    "CsiReadError",
    "DspError",
    "InferenceError",
    "InvalidArgumentError",
    "LabelsError",
    "ModelLoadError",
    "OutOfBoundsError",
    "PathNotFoundError",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "ResumeFailed",
    "ServerError",
    "SimulationError",
    "SubscriptionError",
    "UsageError",
    "WaitTimeoutError",
    "WiFiDensePoseError",
]
