"""Typed messages: the wire's envelope as a :class:`Message`, and the ``data`` of the main
event types as ``TypedDict`` s (plain dicts at run time, checked by type checkers).

``Client.recv()`` gives the envelope as the dict the wire carries; ``Client.recv_message()``
gives the same as a :class:`Message`::

    msg = await client.recv_message(timeout=5)
    if msg.type == "pose_data":
        for person in msg.pose_data()["persons"]:
            print(person["track_id"], person["position"]["x"])
    msg.sequence, msg.time, msg.environment_id

Field meanings: ``docs/protocol.md`` and the spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict, cast

from .errors import ArgumentTypeError

__all__ = [
    "ActivityEvent",
    "BoundingBox",
    "DensePose",
    "Keypoint",
    "Message",
    "OccupancyUpdate",
    "Person",
    "PersonActivity",
    "PoseData",
    "PoseMetadata",
    "SystemEvent",
    "TrackingUpdate",
    "Vector",
]


class Keypoint(TypedDict):
    name: str
    x: float
    y: float
    confidence: float
    visible: bool


class Vector(TypedDict):
    x: float
    y: float


class BoundingBox(TypedDict):
    x: float
    y: float
    width: float
    height: float


class PersonActivity(TypedDict, total=False):
    type: str
    confidence: float
    velocity: Vector


class Person(TypedDict, total=False):
    person_id: int
    track_id: int
    confidence: float
    position: Vector
    velocity: Vector
    bounding_box: BoundingBox
    keypoints: list[Keypoint]
    activity: PersonActivity
    dense_pose: DensePose


class DensePose(TypedDict):
    """``grid`` cells on a side of the room's top-down raster; ``cells`` the person's
    foreground cells as ``[row, col, part, u, v]`` (docs/model.md)."""

    grid: int
    cells: list[list[float]]


class PoseMetadata(TypedDict, total=False):
    model_version: str
    coordinates: str
    source_time: float


class PoseData(TypedDict, total=False):
    frame_id: int
    environment_id: str
    persons: list[Person]
    metadata: PoseMetadata


class ActivityEvent(TypedDict, total=False):
    event_type: str
    environment_id: str
    person_id: int
    track_id: int
    severity: str
    confidence: float
    location: Vector
    details: dict[str, Any]
    actions: list[str]


class OccupancyUpdate(TypedDict, total=False):
    environment_id: str
    change_type: str
    current_occupancy: int
    previous_occupancy: int
    confidence: float
    persons: list[dict[str, Any]]


class TrackingUpdate(TypedDict, total=False):
    event: str
    environment_id: str
    track_id: int
    person_id: int
    position: Vector
    confidence: float


class SystemEvent(TypedDict, total=False):
    event: str
    severity: str
    message: str
    component: str
    status: str
    previous_status: str


@dataclass(frozen=True)
class Message:
    """One server message: ``type``, ``data`` (what the wire carries), the envelope's
    ``timestamp`` (RFC 3339 text; :attr:`time` parses it) and ``metadata``."""

    type: str
    data: dict[str, Any]
    timestamp: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, envelope: dict[str, Any]) -> Message:
        """The :class:`Message` of an envelope dict; TypeError when it is not one."""
        kind = envelope.get("type")
        data = envelope.get("data", {})
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise ArgumentTypeError(f"not a message envelope: {str(envelope)[:200]}")
        meta = envelope.get("metadata") or {}
        return cls(kind, data, str(envelope.get("timestamp", "")), dict(meta))

    @property
    def sequence(self) -> int | None:
        """``metadata.sequence``: strictly increasing per connection (gaps mean drops)."""
        seq = self.metadata.get("sequence")
        return seq if isinstance(seq, int) else None

    @property
    def subscription_id(self) -> str | None:
        return self.metadata.get("subscription_id")

    @property
    def replayed_from(self) -> int | None:
        """The sequence an alert first had, when it is sent again after a resume."""
        return self.metadata.get("replayed_from")

    @property
    def environment_id(self) -> str | None:
        env = self.data.get("environment_id")
        return env if isinstance(env, str) else None

    @property
    def time(self) -> datetime | None:
        """The envelope's timestamp as an aware UTC datetime (None when absent)."""
        if not self.timestamp:
            return None
        return datetime.fromisoformat(self.timestamp)

    def _as(self, kind: str) -> dict[str, Any]:
        if self.type != kind:
            raise ArgumentTypeError(f"this is a {self.type} message, not {kind}")
        return self.data

    def pose_data(self) -> PoseData:
        return cast(PoseData, self._as("pose_data"))

    def activity_event(self) -> ActivityEvent:
        return cast(ActivityEvent, self._as("activity_event"))

    def occupancy_update(self) -> OccupancyUpdate:
        return cast(OccupancyUpdate, self._as("occupancy_update"))

    def tracking_update(self) -> TrackingUpdate:
        return cast(TrackingUpdate, self._as("tracking_update"))

    def system_event(self) -> SystemEvent:
        return cast(SystemEvent, self._as("system_event"))
