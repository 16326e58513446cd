"""PUBACK bookkeeping of the MQTT session, driven without a broker (paho's callbacks called
directly on a fake client): which PUBACK deletes which outbox event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge.tests.agent_support import DEVICE, FakeReconciler, agent_config
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.puback_ledger import PubackLedger
from fleetwire.edge.session import MqttSession, MqttVersion, _Connection
from fleetwire.edge.store import Store
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import PresenceBirth, PresenceBirthData

SUCCESS = ReasonCode(PacketTypes.PUBACK, identifier=0x00)
NOT_AUTHORIZED = ReasonCode(PacketTypes.PUBACK, identifier=0x87)
QUOTA_EXCEEDED = ReasonCode(PacketTypes.PUBACK, identifier=0x97)


@dataclass
class Info:
    mid: int
    rc: int = mqtt.MQTT_ERR_SUCCESS

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None


@dataclass
class FakeClient:
    """Hands out the mids it is told to; ``during_publish`` runs before publish() returns."""

    mids: Iterator[int]
    published: list[tuple[str, bytes, int]] = field(default_factory=list)
    during_publish: Callable[[int], None] | None = None

    def publish(self, topic: str, payload: bytes, qos: int = 0, **_: Any) -> Info:
        mid = next(self.mids)
        self.published.append((topic, payload, mid))
        if self.during_publish is not None:
            self.during_publish(mid)
        return Info(mid)

    def subscribe(self, *_: Any, **__: Any) -> None:
        return None

    def disconnect(self) -> None:
        return None


@dataclass
class Rig:
    session: MqttSession
    conn: _Connection
    client: FakeClient
    store: Store
    reconciler: FakeReconciler

    def puback(self, mid: int, reason: ReasonCode = SUCCESS) -> None:
        self.session._on_publish(self.conn, mid, reason)

    def event_publishes(self) -> list[tuple[str, bytes, int]]:
        return [p for p in self.client.published if "/events/" in p[0]]


def _birth() -> PresenceBirth:
    return PresenceBirth(
        source=device_source(DEVICE),
        subject=DEVICE,
        data=PresenceBirthData(agent_version="0", protocol_types=[]),
    )


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = Store.open(tmp_path)
    config = agent_config(tmp_path, "mqtt://127.0.0.1:1883", backoff_initial_s=0.01)
    session = MqttSession(config, store, birth=_birth, on_command=lambda _: None)
    client = FakeClient(iter(range(1, 1_000_000)))
    conn = _Connection(
        client=client,  # type: ignore[arg-type]
        protocol=MqttVersion.MQTT5,
        ledger=PubackLedger(config.max_inflight),
    )
    reconciler = FakeReconciler(store, Outbox(store, DEVICE))
    yield Rig(session, conn, client, store, reconciler)
    store.close()


@pytest.mark.parametrize("reason", [NOT_AUTHORIZED, QUOTA_EXCEEDED], ids=["0x87", "0x97"])
def test_a_refused_puback_keeps_the_event_and_retries_it_after_a_backoff(
    rig: Rig, reason: ReasonCode, caplog: pytest.LogCaptureFixture
) -> None:
    rig.reconciler.emit_container(1)
    rig.session._pump(rig.conn)
    [(_, payload, mid)] = rig.event_publishes()

    with caplog.at_level(logging.WARNING, logger="fleetwire.edge.session"):
        rig.puback(mid, reason)
    rig.session._pump(rig.conn)
    assert rig.store.outbox_size() == 1, "a refused event is not delivered: keep it"
    assert str(reason) in caplog.text
    assert "seq 1" in caplog.text

    rig.conn.ledger.retry_at = 0.0  # the backoff has passed
    rig.session._pump(rig.conn)
    [_, (_, again, retry_mid)] = rig.event_publishes()
    assert again == payload, "the same event (same id, same seq) is published again"
    rig.puback(retry_mid)
    rig.session._pump(rig.conn)
    assert rig.store.outbox_size() == 0


def test_a_refused_event_is_not_retried_before_its_backoff(rig: Rig) -> None:
    rig.reconciler.emit_container(1)
    rig.session._pump(rig.conn)
    rig.puback(rig.event_publishes()[0][2], NOT_AUTHORIZED)
    rig.conn.ledger.retry_at = float("inf")
    for _ in range(5):
        rig.session._pump(rig.conn)
    assert len(rig.event_publishes()) == 1, "no spinning on a refusal"
    assert rig.store.outbox_size() == 1


def test_a_refusal_before_publish_returns_keeps_the_event(rig: Rig) -> None:
    rig.client.during_publish = lambda mid: rig.puback(mid, NOT_AUTHORIZED)
    rig.reconciler.emit_container(1)
    rig.session._pump(rig.conn)
    rig.session._pump(rig.conn)
    assert rig.store.outbox_size() == 1
    assert rig.conn.ledger.refused == [1]
    assert not rig.conn.ledger.unclaimed


@pytest.mark.parametrize("early", [False, True], ids=["puback-after", "puback-before-return"])
def test_the_birth_puback_never_acknowledges_an_event_reusing_its_mid(
    tmp_path: Path, rig: Rig, early: bool
) -> None:
    # paho's mid counter wraps after 65535 publishes on one connection: the next event
    # gets the birth's mid again.
    rig.client.mids = iter([7, 7, 8])
    if early:
        rig.client.during_publish = lambda mid: rig.puback(mid) if mid == 7 else None
    stopped = threading.Event()
    stopped.set()
    rig.session._serve(rig.conn, stopped)  # subscribe, birth; the loop does not run
    if early:
        rig.client.during_publish = None
    else:
        rig.puback(7)  # the birth's PUBACK
    assert not rig.conn.ledger.unclaimed

    rig.reconciler.emit_container(1)
    rig.session._pump(rig.conn)
    assert rig.event_publishes()[0][2] == 7
    rig.session._pump(rig.conn)
    assert rig.store.outbox_size() == 1, "deleted before its own PUBACK"
    rig.puback(7)
    rig.session._pump(rig.conn)
    assert rig.store.outbox_size() == 0
