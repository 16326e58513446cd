"""Gap checking without a broker: a lasting gap enqueues one sync; an inventory closes it."""

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from cloud.tests.support import birth, dep_state, feed, inventory
from fleetwire.cloud.projector import GapChecker
from fleetwire.protocol.envelope import FIRST_SEQ, utcnow

S = FIRST_SEQ  # a device's first event


def rows(engine: Any, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_persistent_gap_enqueues_one_sync_then_inventory_reconciles(engine, settings):
    woken = []
    gaps = GapChecker(engine, settings, on_command=lambda: woken.append(1))
    feed(engine, settings, birth("d1"), dep_state("d1", S, "x"), dep_state("d1", S + 1, "gone"))
    feed(engine, settings, dep_state("d1", S + 5, "x", "stopped"))
    assert gaps.check() == []  # not yet timed out
    later = utcnow() + timedelta(seconds=settings.gap_timeout_s + 0.1)
    assert gaps.check(later) == ["d1"]
    assert gaps.check(later) == []  # asked once per timeout
    assert woken == [1]
    (cmd,) = rows(engine, "SELECT type, status, device_id FROM command")
    assert cmd == ("io.fleetwire.command.sync.v1", "pending", "d1")
    assert rows(engine, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == [(1,)]
    feed(engine, settings, inventory("d1", S + 6, {"x": ["web"]}))
    assert rows(engine, "SELECT id, gone FROM deployment ORDER BY id") == [
        ("gone", True),
        ("x", False),
    ]
    assert rows(engine, "SELECT next_seq, gap_since FROM device") == [(S + 7, None)]
    assert rows(engine, "SELECT count(*) FROM held_event") == [(0,)]
    # The held seq S + 5 was older than the inventory: applied first, then superseded.
    assert rows(engine, "SELECT state FROM deployment WHERE id = 'x'") == [("running",)]


def test_gap_without_announced_sync_sends_nothing(engine, settings):
    gaps = GapChecker(engine, settings)
    feed(engine, settings, birth("d1", types=["io.fleetwire.command.deploy.v1"]))
    feed(engine, settings, dep_state("d1", S, "x"), dep_state("d1", S + 3, "x"))
    assert gaps.check(utcnow() + timedelta(seconds=5)) == []
    assert rows(engine, "SELECT count(*) FROM command") == [(0,)]
