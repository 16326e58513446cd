"""The transactional outbox: a command and its outbox row are written in the caller's
transaction; the relay publishes it later. A command's ``action`` comes from the action table."""

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from fleetwire.cloud.actions import ACTION_OF_TYPE
from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.db.tables import Command, Outbox
from fleetwire.cloud.tracing import child_traceparent
from fleetwire.protocol.commands import DeployData, SyncCommand, SyncData
from fleetwire.protocol.envelope import CommandEnvelope, utcnow


def stored_payload(message: CommandEnvelope) -> tuple[dict[str, Any], list[str]]:
    """The JSON the outbox stores for ``message`` and the credential labels it needs.

    Secrets never go into the outbox: credentials are replaced by their labels (refs) and the
    relay resolves them when it publishes.
    """
    payload = message.model_dump(mode="json", exclude_none=True)
    refs: list[str] = []
    if isinstance(message.data, DeployData):
        refs = sorted({c.ref for c in message.data.credentials})
        payload["data"]["credentials"] = []
    return payload, refs


def enqueue(
    session: Session,
    message: CommandEnvelope,
    *,
    device_id: str,
    deployment_id: str | None = None,
    credential_refs: list[str] | None = None,
) -> Command:
    """Add ``message`` as a pending command plus its outbox row to ``session``'s transaction."""
    payload, refs = stored_payload(message)
    refs = sorted({*refs, *(credential_refs or [])})
    now = utcnow()
    assert message.expires is not None, "commands carry an expiry"
    command = Command(
        id=message.id,
        device_id=device_id,
        deployment_id=deployment_id,
        action=ACTION_OF_TYPE.get(message.type, message.type),
        type=message.type,
        status=CommandStatus.PENDING,
        created_at=now,
        updated_at=now,
        expires=message.expires,
    )
    session.add(command)
    session.flush()
    session.add(
        Outbox(
            command_id=message.id,
            device_id=device_id,
            payload=payload,
            credential_refs=refs,
            created_at=now,
            next_attempt_at=now,
        )
    )
    return command


def sync_command(reason: str, ttl: timedelta, now: datetime | None = None) -> SyncCommand:
    """A ``sync`` command asking a device for a full inventory."""
    now = now or utcnow()
    return SyncCommand(
        data=SyncData(reason=reason[:256]),
        time=now,
        expires=now + ttl,
        traceparent=child_traceparent(),
    )
