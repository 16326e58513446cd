"""``--wait``'s verdicts: pure rules over the command and the deployment read model."""

from typing import Any

import pytest

from fleetwire.cloud.operator.progress import Outcome, judge


def _deployment(state: str, *containers: tuple[str, str], reason: str | None = None) -> Any:
    return {
        "state": state,
        "reason": reason,
        "containers": [{"status": s, "health": h, "gone": False} for s, h in containers],
    }


@pytest.mark.parametrize("status", ["failed", "rejected", "expired"])
def test_a_failed_command_fails(status):
    verdict = judge("start", {"status": status, "detail": "boom"}, None)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.summary == f"command {status}: boom"


def test_rolled_back_wins():
    verdict = judge(
        "upgrade", {"status": "succeeded"}, _deployment("rolled_back", reason="unhealthy")
    )
    assert (verdict.outcome, verdict.summary) == (Outcome.ROLLED_BACK, "rolled back: unhealthy")


@pytest.mark.parametrize("status", ["pending", "sent", "accepted"])
def test_open_commands_are_in_progress(status):
    verdict = judge("deploy", {"status": status}, _deployment("pulling"))
    assert verdict.outcome is None
    assert verdict.summary == f"command {status}, deployment pulling"


def test_a_command_without_status_is_pending():
    assert judge("deploy", {}, None).summary == "command pending, deployment pending"


@pytest.mark.parametrize(
    ("action", "state", "summary"),
    [("stop", "stopped", "stopped"), ("delete", "deleted", "deleted")],
)
def test_each_action_settles_in_its_state(action, state, summary):
    assert judge(action, {"status": "succeeded"}, _deployment("running")).outcome is None
    verdict = judge(action, {"status": "succeeded"}, _deployment(state))
    assert (verdict.outcome, verdict.summary) == (Outcome.HEALTHY, summary)


@pytest.mark.parametrize("action", ["deploy", "start", "upgrade", "redeploy", "unknown"])
def test_running_needs_healthy_containers(action):
    ok = {"status": "succeeded"}
    assert judge(action, ok, _deployment("stopped")).outcome is None
    waiting = judge(action, ok, _deployment("running", ("running", "starting")))
    assert (waiting.outcome, waiting.summary) == (None, "running, waiting for healthy containers")
    verdict = judge(action, ok, _deployment("running", ("running", "healthy"), ("running", "none")))
    assert (verdict.outcome, verdict.summary) == (Outcome.HEALTHY, "running and healthy")


def test_an_action_without_a_settled_state_ends_with_its_command():
    verdict = judge("sync", {"status": "succeeded"}, None)
    assert verdict.outcome is Outcome.HEALTHY
