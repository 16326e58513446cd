"""The relay: publishes the command outbox to devices.

Publish-then-mark: a row is marked sent only after the broker's PUBACK. A crash in between
publishes the same command (same id) again; the device's journal absorbs the duplicate. Secrets
are injected here, at publish time, from the encrypted image credentials.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.crypto import SecretBox
from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.db.tables import Command, ImageCredential, Outbox
from fleetwire.cloud.errors import BrokerUnavailable, CloudError, PublishRejected
from fleetwire.cloud.mqtt import BrokerAddress, MqttClient
from fleetwire.cloud.settings import Settings
from fleetwire.protocol.codec import DEFAULT_CODEC, Codec, user_properties
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.envelope import CommandEnvelope, utcnow
from fleetwire.protocol.errors import ProtocolError
from fleetwire.protocol.registry import MESSAGE_TYPES
from fleetwire.protocol.topics import command_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    """An outbox row due for publishing."""

    outbox_id: int
    command_id: str
    device_id: str
    payload: dict[str, Any]
    credential_refs: list[str]
    attempts: int
    expires: datetime


class CredentialMissing(CloudError):
    """A command names image credentials that no longer exist: it can never be sent as is."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        names = ", ".join(labels)
        plural = "s" if len(labels) > 1 else ""
        super().__init__(
            f"image credential{plural} {names} was deleted before the command was sent"
        )


def backoff(attempts: int, cap: float) -> float:
    """Seconds before retry number ``attempts`` (exponential, capped)."""
    return float(min(cap, 0.5 * 2 ** min(attempts, 16)))


class Relay:
    """Polls the outbox (and can be woken), publishes QoS 1, marks rows sent on PUBACK."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        client: MqttClient | None = None,
        codec: Codec = DEFAULT_CODEC,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.codec = codec
        self.client = client or MqttClient(
            BrokerAddress.from_settings(settings),
            f"{settings.client_id}-relay",
            session_expiry_s=settings.mqtt_session_expiry_s,
            protocols=settings.mqtt_protocols,
        )
        self._box = SecretBox(settings.secret_key.get_secret_value())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connect_failures = 0

    # --- one pass, in three steps a test can separate ---
    def due(self, now: datetime | None = None) -> list[Pending]:
        """Outbox rows to publish now, oldest first; expired commands are closed on the way."""
        now = now or utcnow()
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Outbox, Command.expires)
                .join(Command, col(Command.id) == col(Outbox.command_id))
                .where(col(Outbox.sent_at).is_(None), col(Outbox.next_attempt_at) <= now)
                .order_by(col(Outbox.id))
                .limit(self.settings.relay_batch)
            ).all()
            pending: list[Pending] = []
            for row, expires in rows:
                assert row.id is not None
                if expires <= now:
                    self._close_expired(session, row, now)
                    continue
                pending.append(
                    Pending(
                        row.id,
                        row.command_id,
                        row.device_id,
                        row.payload,
                        row.credential_refs,
                        row.attempts,
                        expires,
                    )
                )
            return pending

    def _close_expired(self, session: Session, row: Outbox, now: datetime) -> None:
        session.execute(update(Outbox).where(col(Outbox.id) == row.id).values(sent_at=now))
        session.execute(
            update(Command)
            .where(col(Command.id) == row.command_id, col(Command.status) == CommandStatus.PENDING)
            .values(
                status=CommandStatus.EXPIRED,
                detail="expired before it could be sent",
                updated_at=now,
            )
        )
        log.warning("command %s expired before it was sent", row.command_id)

    def _fail(self, pending: Pending, detail: str) -> None:
        """Close a command that can never be sent: the command fails, the outbox row is done."""
        now = utcnow()
        with session_scope(self.engine) as session:
            session.execute(
                update(Outbox).where(col(Outbox.id) == pending.outbox_id).values(sent_at=now)
            )
            session.execute(
                update(Command)
                .where(
                    col(Command.id) == pending.command_id,
                    col(Command.status) == CommandStatus.PENDING,
                )
                .values(status=CommandStatus.FAILED, detail=detail, updated_at=now)
            )
        log.warning("command %s not sent: %s", pending.command_id, detail)

    def message(self, pending: Pending) -> CommandEnvelope:
        """The command to publish, with image-credential secrets filled in."""
        payload = pending.payload
        if pending.credential_refs:
            with Session(self.engine) as session:
                creds = session.exec(
                    select(ImageCredential).where(
                        col(ImageCredential.label).in_(pending.credential_refs)
                    )
                ).all()
            missing = sorted(set(pending.credential_refs) - {c.label for c in creds})
            if missing:
                raise CredentialMissing(missing)
            payload = {
                **payload,
                "data": {
                    **payload["data"],
                    "credentials": [
                        RegistryCredential(
                            ref=c.label,
                            registry=c.registry_host,
                            username=c.username,
                            password=self._box.decrypt(c.secret_encrypted),  # type: ignore[arg-type]
                        )
                        for c in creds
                    ],
                },
            }
        cls = MESSAGE_TYPES[payload["type"]]
        message = cls.model_validate(payload)
        assert isinstance(message, CommandEnvelope)
        return message

    def publish(self, batch: list[Pending]) -> tuple[list[Pending], list[Pending]]:
        """Publish ``batch``; returns (acknowledged, failed). Nothing is marked here."""
        infos: list[tuple[Pending, mqtt.MQTTMessageInfo | None]] = []
        closed: set[int] = set()  # rows that can never be sent: neither acked nor failed
        for item in batch:
            try:
                message = self.message(item)
                body = self.codec.encode(message)
                published = self.client.publish_nowait(
                    command_topic(item.device_id), body, user_properties=user_properties(message)
                )
                infos.append((item, published))
            except CredentialMissing as exc:
                self._fail(item, str(exc))
                closed.add(item.outbox_id)
            except (ProtocolError, CloudError) as exc:
                log.warning("command %s not published: %s", item.command_id, exc)
                infos.append((item, None))
                if isinstance(exc, BrokerUnavailable):
                    break
        tried = {p.outbox_id for p, _ in infos} | closed
        acked, failed = [], [i for i in batch if i.outbox_id not in tried]
        for item, info in infos:
            if info is None:
                failed.append(item)
                continue
            try:
                self.client.wait_published(info, self.settings.relay_publish_timeout_s)
            except PublishRejected as exc:
                log.warning("command %s not sent, will retry: %s", item.command_id, exc)
                failed.append(item)
            except BrokerUnavailable:
                failed.append(item)
            else:
                acked.append(item)
        return acked, failed

    def mark(self, acked: list[Pending], failed: list[Pending]) -> None:
        """Mark acknowledged rows sent and schedule failed ones for a retry with backoff."""
        now = utcnow()
        with session_scope(self.engine) as session:
            if acked:
                ids = [p.outbox_id for p in acked]
                session.execute(update(Outbox).where(col(Outbox.id).in_(ids)).values(sent_at=now))
                session.execute(
                    update(Command)
                    .where(
                        col(Command.id).in_([p.command_id for p in acked]),
                        col(Command.status) == CommandStatus.PENDING,
                    )
                    .values(status=CommandStatus.SENT, sent_at=now, updated_at=now)
                )
            for p in failed:
                delay = backoff(p.attempts, self.settings.relay_backoff_max_s)
                session.execute(
                    update(Outbox)
                    .where(col(Outbox.id) == p.outbox_id)
                    .values(attempts=p.attempts + 1, next_attempt_at=now + timedelta(seconds=delay))
                )

    def run_once(self) -> int:
        """Connect if needed, then publish what is due; returns how many were acknowledged."""
        if not self.client.connected:
            self.client.connect()
        batch = self.due()
        if not batch:
            return 0
        acked, failed = self.publish(batch)
        self.mark(acked, failed)
        return len(acked)

    # --- lifecycle ---
    def wake(self) -> None:
        """Publish now instead of at the next poll (called after a command is stored)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
                self._connect_failures = 0
            except BrokerUnavailable as exc:
                self._connect_failures += 1
                delay = backoff(self._connect_failures, self.settings.relay_backoff_max_s)
                log.warning("relay: broker unavailable (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
                continue
            except Exception:
                log.exception("relay pass failed")
                self._stop.wait(self.settings.relay_poll_interval_s)
                continue
            if sent == self.settings.relay_batch:
                continue
            self._wake.wait(self.settings.relay_poll_interval_s)
            self._wake.clear()

    def start(self) -> None:
        """Run in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fleetwire-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and disconnect."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client.close()
