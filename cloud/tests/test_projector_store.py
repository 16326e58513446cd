"""The batch store's transaction, without a broker: dead letters, idempotency, gaps held."""

from typing import Any

from sqlalchemy import text

from cloud.tests.support import (
    accepted,
    birth,
    container_state,
    dep_state,
    feed,
    inventory,
    register,
    seed_catalog,
    succeeded,
    topic_of,
)
from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.outbox import enqueue, sync_command
from fleetwire.cloud.projector import BatchStore, Received
from fleetwire.protocol.codec import encode
from fleetwire.protocol.envelope import FIRST_SEQ
from fleetwire.protocol.topics import event_topic, presence_topic

S = FIRST_SEQ  # a device's first event


def rows(engine: Any, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_bad_messages_go_to_dead_letters_and_the_rest_is_projected(engine, settings):
    good = dep_state("d1", S, "x")
    other = dep_state("d2", S, "y")
    batch = [
        Received(event_topic("d1", "deployment"), b"\xff not json"),
        Received(event_topic("d1", "deployment"), b'{"type": "io.fleetwire.event.nope.v1"}'),
        Received(event_topic("d1", "deployment"), b"x" * 300_000),
        Received(event_topic("d1", "deployment"), encode(other)),  # wrong device on the topic
        Received(event_topic("d1", "container"), encode(good)),  # wrong category
        Received("fleetwire/v1/devices/d1/elsewhere", encode(good)),
        Received(presence_topic("d1"), encode(good)),  # not a presence message
        Received(topic_of(good), encode(good)),
    ]
    result = BatchStore(engine).process(batch)
    assert result.dead == 7
    assert result.applied == 1
    dead = rows(engine, "SELECT topic, payload, reason FROM dead_letter ORDER BY id")
    assert len(dead) == 7
    assert "not valid UTF-8 JSON" in dead[0][2]
    assert "unknown message type" in dead[1][2]
    assert len(dead[2][1]) <= 4096
    assert "does not match topic device" in dead[3][2]
    assert "does not belong" in dead[4][2]
    assert rows(engine, "SELECT state FROM deployment") == [("running",)]


def test_duplicates_by_event_id_and_seq(engine, settings):
    e0, e1 = dep_state("d1", S, "x", "pulling"), dep_state("d1", S + 1, "x", "running")
    feed(engine, settings, e0, e1, e0)
    result = feed(engine, settings, e1, dep_state("d1", S + 1, "x", "error"))
    assert result.duplicates == 2
    assert rows(engine, "SELECT count(*) FROM event") == [(2,)]
    assert rows(engine, "SELECT state FROM deployment") == [("running",)]


def test_gap_is_held_across_batches_then_filled(engine, settings):
    feed(engine, settings, dep_state("d1", S, "x", "pulling"))
    r = feed(
        engine, settings, dep_state("d1", S + 2, "x", "running"), container_state("d1", S + 3, "x")
    )
    assert r.held == 2
    assert rows(engine, "SELECT seq FROM held_event ORDER BY seq") == [(S + 2,), (S + 3,)]
    assert rows(engine, "SELECT state FROM deployment") == [("pulling",)]
    assert rows(engine, "SELECT gap_since IS NOT NULL FROM device") == [(True,)]
    feed(engine, settings, dep_state("d1", S + 1, "x", "creating"))
    assert rows(engine, "SELECT count(*) FROM held_event") == [(0,)]
    assert rows(engine, "SELECT state FROM deployment") == [("running",)]
    assert rows(engine, "SELECT next_seq, gap_since FROM device") == [(S + 4, None)]
    assert rows(engine, "SELECT seq FROM event ORDER BY id") == [(S + i,) for i in range(4)]


def test_command_status_from_lifecycle_events(engine, settings, api):
    (rel, _) = seed_catalog(api)
    register(api, "d1")
    feed(engine, settings, birth("d1"))
    r = api.client.post(
        "/v1/deployments", json={"release_id": rel, "device_ids": ["d1"]}, headers=api.operator
    )
    cmd = r.json()["items"][0]["command_id"]
    feed(engine, settings, accepted("d1", S, cmd))
    assert api.client.get(f"/v1/commands/{cmd}", headers=api.viewer).json()["status"] == "accepted"
    feed(engine, settings, succeeded("d1", S + 1, cmd))
    assert api.client.get(f"/v1/commands/{cmd}", headers=api.viewer).json()["status"] == "succeeded"


def test_lifecycle_events_held_behind_a_gap_move_the_command_when_released(engine, settings, api):
    """Events released from ``held_event`` are projected with their commands loaded too."""

    def status(command_id: str) -> str:
        r = api.client.get(f"/v1/commands/{command_id}", headers=api.viewer)
        return str(r.json()["status"])

    (rel, _) = seed_catalog(api)
    register(api, "d1")
    feed(engine, settings, birth("d1"))
    r = api.client.post(
        "/v1/deployments", json={"release_id": rel, "device_ids": ["d1"]}, headers=api.operator
    )
    item = r.json()["items"][0]
    deploy, dep_id = item["command_id"], item["deployment_id"]

    # The device's first event (seq S) is late: the deploy's lifecycle events are held.
    assert feed(
        engine, settings, accepted("d1", S + 1, deploy), succeeded("d1", S + 2, deploy)
    ).held
    assert status(deploy) == "pending"
    # The batch that fills the gap carries no event of the command, only releases them.
    feed(engine, settings, dep_state("d1", S, dep_id, "running"))
    assert rows(engine, "SELECT count(*) FROM held_event") == [(0,)]
    assert status(deploy) == "succeeded"

    # Same when an inventory releases the held events older than it.
    message = sync_command("test", settings.command_ttl)
    sync = message.id
    with session_scope(engine) as session:
        enqueue(session, message, device_id="d1")
    assert feed(engine, settings, accepted("d1", S + 4, sync), succeeded("d1", S + 5, sync)).held
    assert status(sync) == "pending"
    feed(engine, settings, inventory("d1", S + 6, {dep_id: ["web"]}))
    assert rows(engine, "SELECT count(*) FROM held_event") == [(0,)]
    assert status(sync) == "succeeded"


def test_a_message_the_database_refuses_is_dead_lettered_and_projection_goes_on(
    engine, settings, database_url
):
    # A NUL in free text: PostgreSQL refuses it (DataError) whatever the retries; SQLite takes it.
    feed(engine, settings, birth("d1"), birth("d2"))
    state = dep_state("d1", S, "x")
    bad = state.model_copy(
        update={"data": state.data.model_copy(update={"reason": "disk\x00full"})}
    )
    store = BatchStore(engine)
    result = store.process(
        [Received(topic_of(e), encode(e)) for e in (bad, dep_state("d2", S, "y"))]
    )
    following = store.process([Received(topic_of(e), encode(e)) for e in [dep_state("d3", S, "z")]])
    assert following.applied == 1
    deployments = {r[0] for r in rows(engine, "SELECT id FROM deployment")}
    dead = rows(engine, "SELECT topic, payload, reason FROM dead_letter")
    if database_url.startswith("sqlite"):
        assert result.dead == 0
        assert deployments == {"x", "y", "z"}
        assert not dead
    else:
        assert result.dead == 1
        assert deployments == {"y", "z"}
        ((topic, payload, reason),) = dead
        assert topic == topic_of(bad)
        assert bad.id in payload
        assert "cannot be stored" in reason
        assert "NUL" in reason
