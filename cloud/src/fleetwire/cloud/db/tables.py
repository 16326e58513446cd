"""SQLModel table models: the catalog, the command outbox and the read model.

Catalog (written by the API): ``application``, ``release``, ``image_credential``, ``device``
(its registration columns), ``api_token``. Commands: ``command`` (status, read model) and
``outbox`` (what the relay publishes). Read model (written by the projector): the presence and
sequencing columns of ``device``, ``deployment``, ``container``, ``event`` (history and
processed marker), ``held_event`` (out-of-order events waiting for a gap to fill) and
``dead_letter``.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.db.types import UTCDateTime
from fleetwire.protocol.envelope import utcnow
from fleetwire.protocol.events import DeploymentState

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
_BIGINT_PK = BigInteger().with_variant(Integer, "sqlite")


class ApiToken(SQLModel, table=True):
    """A bearer token of the API; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=128)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked: bool = False


class Application(SQLModel, table=True):
    """An application: a name under which releases are published."""

    __tablename__ = "application"
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=63, unique=True)
    description: str = Field(default="", max_length=4096)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Release(SQLModel, table=True):
    """A release of an application; immutable once a deployment uses it."""

    __tablename__ = "release"
    __table_args__ = (UniqueConstraint("application_id", "version"),)
    id: str = Field(primary_key=True, max_length=36)
    application_id: str = Field(foreign_key="application.id", index=True, max_length=36)
    version: str = Field(max_length=256)
    spec: dict[str, Any] = Field(sa_type=JSON)
    deployed: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ImageCredential(SQLModel, table=True):
    """Registry credentials; ``secret`` is Fernet-encrypted and never leaves through the API."""

    __tablename__ = "image_credential"
    id: str = Field(primary_key=True, max_length=36)
    label: str = Field(max_length=128, unique=True)
    registry_host: str = Field(max_length=255)
    username: str = Field(max_length=255)
    secret_encrypted: str = Field(max_length=4096)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Device(SQLModel, table=True):
    """A device: registration (catalog), presence and the projector's sequencing state."""

    __tablename__ = "device"
    id: str = Field(primary_key=True, max_length=64)
    registered: bool = False
    system_model: str | None = Field(default=None, max_length=128)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Presence (projector).
    online: bool = False
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    presence_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agent_version: str | None = Field(default=None, max_length=256)
    protocol_types: list[str] = Field(default_factory=list, sa_type=JSON)
    docker_version: str | None = Field(default=None, max_length=256)
    reported_system_model: str | None = Field(default=None, max_length=256)
    hostname: str | None = Field(default=None, max_length=256)
    # Sequencing (projector): the next seq expected, and since when a gap is open.
    next_seq: int | None = Field(default=None, sa_type=BigInteger)
    gap_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sync_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Deployment(SQLModel, table=True):
    """One release deployed to one device: desired (API) and reported (projector) state."""

    __tablename__ = "deployment"
    id: str = Field(primary_key=True, max_length=128)
    device_id: str = Field(foreign_key="device.id", index=True, max_length=64)
    application_id: str | None = Field(default=None, foreign_key="application.id", max_length=36)
    application: str = Field(max_length=63)
    desired_release_id: str | None = Field(default=None, foreign_key="release.id", max_length=36)
    desired_version: str | None = Field(default=None, max_length=256)
    current_version: str | None = Field(default=None, max_length=256)
    state: str = Field(default=DeploymentState.PENDING, max_length=32)
    desired_state: str = Field(default=DeploymentState.RUNNING, max_length=32)
    reason: str | None = Field(default=None, max_length=4096)
    reported: bool = Field(default=False, description="The device has reported it at least once.")
    gone: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Container(SQLModel, table=True):
    """A container of a deployment as the device last reported it."""

    __tablename__ = "container"
    deployment_id: str = Field(primary_key=True, max_length=128)
    name: str = Field(primary_key=True, max_length=63)
    device_id: str = Field(index=True, max_length=64)
    release_version: str | None = Field(default=None, max_length=256)
    container_id: str | None = Field(default=None, max_length=256)
    image: str = Field(max_length=256)
    image_id: str | None = Field(default=None, max_length=256)
    status: str = Field(max_length=32)
    health: str = Field(default="none", max_length=32)
    exit_code: int | None = None
    restart_count: int = 0
    gone: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Command(SQLModel, table=True):
    """A command sent (or to be sent) to a device, and its status."""

    __tablename__ = "command"
    id: str = Field(primary_key=True, max_length=128)
    device_id: str = Field(foreign_key="device.id", index=True, max_length=64)
    deployment_id: str | None = Field(default=None, index=True, max_length=128)
    action: str = Field(max_length=32)
    type: str = Field(max_length=128)
    status: str = Field(default=CommandStatus.PENDING, max_length=16)
    detail: str | None = Field(default=None, max_length=4096)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires: datetime = Field(sa_type=UTCDateTime)


class Outbox(SQLModel, table=True):
    """A command waiting to be published; the payload holds credential refs, never secrets."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "next_attempt_at"),)
    id: int | None = Field(default=None, sa_column=Column(_BIGINT_PK, primary_key=True))
    command_id: str = Field(foreign_key="command.id", index=True, max_length=128)
    device_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_type=JSON)
    credential_refs: list[str] = Field(default_factory=list, sa_type=JSON)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Event(SQLModel, table=True):
    """Event history; a row is also the processed marker of its event id."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_device_time", "device_id", "time"),)
    id: int | None = Field(default=None, sa_column=Column(_BIGINT_PK, primary_key=True))
    event_id: str = Field(max_length=128, unique=True)
    device_id: str = Field(max_length=64)
    seq: int | None = Field(default=None, sa_type=BigInteger)
    type: str = Field(max_length=128, index=True)
    deployment_id: str | None = Field(default=None, index=True, max_length=128)
    command_id: str | None = Field(default=None, max_length=128)
    time: datetime = Field(sa_type=UTCDateTime, index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    data: dict[str, Any] = Field(sa_type=JSON)


class HeldEvent(SQLModel, table=True):
    """An event that arrived ahead of its device's sequence, waiting for the gap to fill."""

    __tablename__ = "held_event"
    device_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    event_id: str = Field(max_length=128)
    payload: str
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeadLetter(SQLModel, table=True):
    """A message the projector could not use, with the reason."""

    __tablename__ = "dead_letter"
    id: int | None = Field(default=None, sa_column=Column(_BIGINT_PK, primary_key=True))
    topic: str = Field(max_length=1024)
    payload: str
    reason: str = Field(max_length=4096)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


METADATA = SQLModel.metadata
