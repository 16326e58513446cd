"""The judgement inside ``wait_healthy``: pure, so every case runs without Docker."""

from datetime import UTC, datetime

import pytest

from fleetwire.edge.engine.errors import Unhealthy
from fleetwire.edge.engine.executors import HealthWatch
from fleetwire.edge.engine.observed import ObservedContainer
from fleetwire.edge.engine.steps import WaitHealthy
from fleetwire.protocol.events import ContainerStatus, Health

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def _step(*, check: bool, grace_s: float = 2.0) -> WaitHealthy:
    return WaitHealthy(
        container_id="c1", name="fw-web", container="web", timeout_s=30, grace_s=grace_s,
        has_health_check=check,
    )  # fmt: skip


def _c(
    status: ContainerStatus = ContainerStatus.RUNNING,
    health: Health = Health.NONE,
    started_at: datetime = T0,
    restarts: int = 0,
) -> ObservedContainer:
    return ObservedContainer(
        id="c1", name="fw-web", deployment_id="d", container="web", release="1.0.0",
        spec_hash="h", generation=0, spec=None, status=status, health=health, exit_code=1,
        restart_count=restarts, started_at=started_at,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("check", "health", "healthy", "last"),
    [
        (True, Health.HEALTHY, True, "not started"),
        (True, Health.STARTING, False, "health starting"),
        (False, Health.HEALTHY, True, "not started"),  # the image's own check counts
        (False, Health.STARTING, False, "health starting"),
    ],
)
def test_a_health_check_decides_when_there_is_one(check, health, healthy, last) -> None:
    watch = HealthWatch()
    assert watch.healthy(_step(check=check), _c(health=health), now=0.0) is healthy
    assert watch.last == last


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (_c(health=Health.UNHEALTHY), "web is unhealthy"),
        (_c(status=ContainerStatus.EXITED), "web exited with code 1"),
        (_c(status=ContainerStatus.DEAD), "web exited with code 1"),
    ],
)
def test_unhealthy_or_exited_fails_at_once(container, message) -> None:
    with pytest.raises(Unhealthy, match=message):
        HealthWatch().healthy(_step(check=True), container, now=0.0)


def test_without_a_check_the_container_must_run_for_the_whole_grace_period() -> None:
    watch, step = HealthWatch(), _step(check=False, grace_s=2.0)
    assert not watch.healthy(step, _c(), now=10.0)  # first sight starts the period
    assert not watch.healthy(step, _c(), now=11.9)
    assert watch.healthy(step, _c(), now=12.0)


@pytest.mark.parametrize(
    "restarted", [_c(started_at=T1), _c(restarts=1)], ids=["new start time", "restart count"]
)
def test_a_restart_starts_the_grace_period_again(restarted) -> None:
    watch, step = HealthWatch(), _step(check=False, grace_s=2.0)
    assert not watch.healthy(step, _c(), now=10.0)
    assert not watch.healthy(step, restarted, now=11.0)
    assert not watch.healthy(step, restarted, now=12.5)
    assert watch.healthy(step, restarted, now=13.0)


def test_a_container_not_running_resets_the_grace_period() -> None:
    watch, step = HealthWatch(), _step(check=False, grace_s=2.0)
    assert not watch.healthy(step, _c(), now=10.0)
    assert not watch.healthy(step, _c(status=ContainerStatus.RESTARTING), now=11.0)
    assert watch.last == "restarting"
    assert not watch.healthy(step, _c(), now=12.5)
    assert watch.healthy(step, _c(), now=14.5)
