"""The PUBACK ledger on its own: scripts of publishes and PUBACKs, and what the pump then gets.

Each case is a script of steps on one ledger (one connection), then the expected pump work and
leftovers. Steps: ``("event", mid, seq)`` paho took event ``seq`` as ``mid``; ``("presence",
mid)`` paho took a presence publish as ``mid``; ``("ack", mid)`` / ``("refuse", mid)`` a PUBACK
with a success / failure reason code. The refusal backoff is fixed at 1 s and the clock stands at
``NOW`` unless a case says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fleetwire.edge.backoff import Backoff
from fleetwire.edge.puback_ledger import AckedPublish, PubackLedger, PubackOutcome

NOW = 100.0
BACKOFF_S = 1.0

Step = tuple[str, int] | tuple[str, int, int]


def _ledger(window: int = 20) -> PubackLedger:
    return PubackLedger(window, Backoff(initial=BACKOFF_S, maximum=BACKOFF_S, floor=BACKOFF_S))


def _run(ledger: PubackLedger, steps: list[Step]) -> list[PubackOutcome | bool | None]:
    """Apply ``steps``; what each returned (outcome of a PUBACK, or event_published's flag)."""
    results: list[PubackOutcome | bool | None] = []
    for step in steps:
        match step:
            case ("event", mid, seq):
                results.append(ledger.event_published(mid, seq, NOW))
            case ("presence", mid):
                ledger.presence_published(mid)
                results.append(None)
            case ("ack", mid):
                results.append(ledger.puback(mid, delivered=True, now=NOW))
            case ("refuse", mid):
                results.append(ledger.puback(mid, delivered=False, now=NOW))
            case _:
                raise AssertionError(step)
    return results


@dataclass(frozen=True)
class Case:
    steps: list[Step]
    acked: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # kept for a retry after the backoff
    in_flight: dict[int, int] = field(default_factory=dict)
    unclaimed: dict[int, bool] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "nothing sent": Case([]),
    "sent, no PUBACK yet": Case([("event", 1, 10)], in_flight={1: 10}),
    "PUBACK after publish returned": Case([("event", 1, 10), ("ack", 1)], acked=[10]),
    "PUBACK before publish returned": Case([("ack", 1), ("event", 1, 10)], acked=[10]),
    "acks in any order": Case(
        [("event", 1, 10), ("event", 2, 11), ("event", 3, 12), ("ack", 3), ("ack", 1)],
        acked=[12, 10],
        in_flight={2: 11},
    ),
    "refused after publish returned": Case([("event", 1, 10), ("refuse", 1)], refused=[10]),
    "refused before publish returned": Case([("refuse", 1), ("event", 1, 10)], refused=[10]),
    "one refused, the next delivered": Case(
        [("event", 1, 10), ("event", 2, 11), ("refuse", 1), ("ack", 2)],
        acked=[11],
        refused=[10],
    ),
    "presence PUBACK acknowledges nothing": Case([("presence", 1), ("ack", 1)]),
    "presence PUBACK before publish returned": Case([("ack", 1), ("presence", 1)]),
    "refused presence is not retried": Case([("presence", 1), ("refuse", 1)]),
    # paho's mid counter wraps after 65535 publishes: an event reuses the birth's mid.
    "event reusing a presence mid waits for its own PUBACK": Case(
        [("presence", 7), ("ack", 7), ("event", 7, 10)], in_flight={7: 10}
    ),
    "early presence PUBACK, then an event reusing its mid": Case(
        [("ack", 7), ("presence", 7), ("event", 7, 10)], in_flight={7: 10}
    ),
    "event reusing a presence mid, then its PUBACK": Case(
        [("presence", 7), ("ack", 7), ("event", 7, 10), ("ack", 7)], acked=[10]
    ),
    # Held until publish() returns mid 5 (paho reports one PUBACK per publish, never two).
    "PUBACK of a mid not yet claimed stays unclaimed": Case([("ack", 5)], unclaimed={5: True}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_what_the_pump_gets(case: Case) -> None:
    ledger = _ledger()
    _run(ledger, case.steps)
    work = ledger.take(NOW + BACKOFF_S)  # the backoff of any refusal has passed
    assert work.acked == case.acked
    assert work.retry == case.refused
    assert work.room == 20 - len(case.in_flight)
    assert ledger.in_flight == case.in_flight
    assert ledger.unclaimed == case.unclaimed


OUTCOMES: dict[str, tuple[list[Step], PubackOutcome | bool | None]] = {
    "event delivered": ([("event", 1, 10), ("ack", 1)], PubackOutcome(AckedPublish.EVENT, 10)),
    "event refused": ([("event", 1, 10), ("refuse", 1)], PubackOutcome(AckedPublish.EVENT, 10)),
    "presence": ([("presence", 1), ("refuse", 1)], PubackOutcome(AckedPublish.PRESENCE)),
    "before publish returned": ([("refuse", 1)], PubackOutcome(AckedPublish.UNCLAIMED)),
    "published after a success PUBACK": ([("ack", 1), ("event", 1, 10)], True),
    "published after a refusal PUBACK": ([("refuse", 1), ("event", 1, 10)], False),
    "published, PUBACK still to come": ([("event", 1, 10)], False),
}


@pytest.mark.parametrize(("steps", "last"), OUTCOMES.values(), ids=OUTCOMES.keys())
def test_what_the_last_step_reports(steps: list[Step], last: PubackOutcome | bool | None) -> None:
    assert _run(_ledger(), steps)[-1] == last


def test_take_hands_out_acked_seqs_once() -> None:
    ledger = _ledger()
    _run(ledger, [("event", 1, 10), ("ack", 1)])
    assert ledger.take(NOW).acked == [10]
    assert ledger.take(NOW).acked == []


@pytest.mark.parametrize(
    ("now", "retry"),
    [(NOW, []), (NOW + BACKOFF_S - 0.001, []), (NOW + BACKOFF_S, [10]), (NOW + 3600, [10])],
    ids=["at once", "just before", "at the backoff", "long after"],
)
def test_a_refused_seq_is_due_only_after_its_backoff(now: float, retry: list[int]) -> None:
    ledger = _ledger()
    _run(ledger, [("event", 1, 10), ("refuse", 1)])
    assert ledger.retry_at == NOW + BACKOFF_S
    assert ledger.take(now).retry == retry
    assert ledger.refused == ([] if retry else [10]), "a due seq leaves the ledger with take()"


def test_each_refusal_backs_off_further() -> None:
    ledger = PubackLedger(20, Backoff(initial=1.0, maximum=60.0, floor=0.0))
    delays = []
    for mid in range(1, 6):
        _run(ledger, [("event", mid, mid), ("refuse", mid)])
        delays.append(ledger.retry_at - NOW)
    assert ledger.refusal_backoff.attempt == 5
    assert all(0.0 <= d <= 2.0**n for n, d in enumerate(delays))


def test_requeued_retries_are_due_on_the_next_take() -> None:
    ledger = _ledger()
    _run(ledger, [("event", 1, 10), ("event", 2, 11), ("refuse", 1), ("refuse", 2)])
    later = NOW + BACKOFF_S
    assert ledger.take(later).retry == [10, 11]
    ledger.requeue([11])  # the pump sent 10, had no room for 11
    assert ledger.take(later).retry == [11]


def test_room_counts_only_events_awaiting_their_puback() -> None:
    ledger = _ledger(window=3)
    _run(ledger, [("presence", 1), ("event", 2, 10), ("event", 3, 11)])
    assert ledger.take(NOW).room == 1
    _run(ledger, [("ack", 2), ("refuse", 3)])
    assert ledger.take(NOW).room == 3


def test_a_new_ledger_for_a_new_connection_knows_no_old_mids() -> None:
    old = _ledger()
    _run(old, [("presence", 1), ("event", 2, 10), ("refuse", 3)])
    new = _ledger()  # reconnect: the outbox replays seq 10 from its oldest row
    assert _run(new, [("event", 1, 10), ("ack", 1)])[-1] == PubackOutcome(AckedPublish.EVENT, 10)
    assert new.take(NOW).acked == [10]
    assert new.in_flight == {}
    assert new.unclaimed == {}
