"""The pure planner: decide() exhaustively, plan() per scenario, assess(). No Docker here."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.health import assess
from fleetwire.edge.engine.observed import (
    Observed,
    ObservedContainer,
    ObservedNetwork,
    ObservedVolume,
)
from fleetwire.edge.engine.planner import Action, PlanContext, decide, plan
from fleetwire.edge.engine.steps import (
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    PullImage,
    Step,
)
from fleetwire.edge.ports import DesiredDeployment, TargetState
from fleetwire.protocol.events import ContainerStatus, DeploymentState, Health
from fleetwire.protocol.release import (
    ContainerSpec,
    HealthCheck,
    NetworkSpec,
    ReleaseSpec,
    RestartPolicy,
    VolumeSpec,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DEV = "dev-1"
CTX = PlanContext(now=NOW, device_id=DEV, grace_s=5.0, health_timeout_s=30.0)
DEP = "dep-1"
IMAGE = "acme/app:v1"
IMAGES = {"acme/app:v1": "sha256:v1", "acme/app:v2": "sha256:v2"}
CHECK = HealthCheck(test=["CMD", "true"])


def container(**changes: Any) -> ContainerSpec:
    base: dict[str, Any] = {
        "name": "web",
        "image": IMAGE,
        "env": {"A": "1"},
        "ports": ["8080:80"],
        "volumes": ["data:/data"],
        "networks": ["backend"],
        "health_check": CHECK,
    }
    base.update(changes)
    return ContainerSpec(**base)


def rel(version: str = "1.0.0", **changes: Any) -> ReleaseSpec:
    return ReleaseSpec(
        application="demo",
        version=version,
        containers=[container(**changes)],
        volumes=[VolumeSpec(name="data"), VolumeSpec(name="other")],
        networks=[NetworkSpec(name="backend"), NetworkSpec(name="front")],
    )


def want(release: ReleaseSpec | None = None, **kw: Any) -> DesiredDeployment:
    return DesiredDeployment(deployment_id=DEP, release=release or rel(), **kw)


def running(
    desired: DesiredDeployment,
    *,
    release: ReleaseSpec | None = None,
    status: ContainerStatus = ContainerStatus.RUNNING,
    health: Health = Health.HEALTHY,
    generation: int | None = None,
    started: datetime = NOW - timedelta(minutes=5),
    cid: str = "c1",
) -> ObservedContainer:
    """The container the engine would show for ``desired`` (or ``release``)."""
    r = release or desired.release
    spec = lb.applied_spec(
        r, r.containers[0], desired.generation if generation is None else generation
    )
    return ObservedContainer(
        id=cid,
        name=lb.container_name(DEV, DEP, spec),
        deployment_id=DEP,
        container=spec.container.name,
        release=r.version,
        spec_hash=spec.spec_hash(),
        generation=spec.generation,
        spec=spec,
        status=status,
        health=health,
        image=spec.container.image,
        image_id=IMAGES.get(spec.container.image, ""),
        started_at=started,
        networks=frozenset(lb.network_name(DEV, DEP, n) for n in spec.container.networks),
    )


def infra(desired: DesiredDeployment) -> dict[str, Any]:
    return {
        "networks": tuple(
            ObservedNetwork(
                id=f"n-{n.name}",
                name=lb.network_name(DEV, DEP, n.name),
                deployment_id=DEP,
                spec_hash="",
            )
            for n in desired.release.networks
        ),
        "volumes": tuple(
            ObservedVolume(name=lb.volume_name(DEV, DEP, v.name), deployment_id=DEP, spec_hash="")
            for v in desired.release.volumes
        ),
        "images": IMAGES,
    }


def world(desired: DesiredDeployment, *containers: ObservedContainer) -> Observed:
    return Observed(containers=containers, **infra(desired))


def actions(steps: list[Step]) -> list[str]:
    return [s.action for s in steps]


# -- decide(): every aspect x every status x every target ----------------------------------

CHANGES: dict[str, tuple[dict[str, Any], str]] = {
    "none": ({}, ""),
    "image": ({"image": "acme/app:v2"}, "image changed"),
    "mounts": ({"volumes": ["other:/data"]}, "mounts changed"),
    "binds": ({"binds": ["/srv:/srv:ro"]}, "mounts changed"),
    "env": ({"env": {"A": "2"}}, "config changed"),
    "command": ({"command": ["sh"]}, "config changed"),
    "entrypoint": ({"entrypoint": ["/init"]}, "config changed"),
    "health": ({"health_check": None}, "config changed"),
    "ports": ({"ports": ["9090:80"]}, "host config changed"),
    "networks": ({"networks": ["front"]}, "host config changed"),
    "restart": ({"restart_policy": RestartPolicy.ALWAYS}, "host config changed"),
    "init": ({"init": True}, "host config changed"),
    "stop_timeout": ({"stop_timeout_s": 3}, "host config changed"),
}
STATE_RULES: dict[tuple[TargetState, ContainerStatus, Health], Action] = {}
for _status, _health in itertools.product(ContainerStatus, Health):
    if _status is ContainerStatus.MISSING:
        continue
    if _status in (ContainerStatus.RUNNING, ContainerStatus.RESTARTING, ContainerStatus.PAUSED):
        STATE_RULES[TargetState.STOPPED, _status, _health] = Action.STOP
    else:
        STATE_RULES[TargetState.STOPPED, _status, _health] = Action.NONE
    if _status is ContainerStatus.DEAD:
        running_rule = Action.RECREATE
    elif _status in (ContainerStatus.CREATED, ContainerStatus.EXITED, ContainerStatus.PAUSED):
        running_rule = Action.START
    elif _status is ContainerStatus.RUNNING and _health is Health.STARTING:
        running_rule = Action.WAIT
    else:
        running_rule = Action.NONE
    STATE_RULES[TargetState.RUNNING, _status, _health] = running_rule


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("target", [TargetState.RUNNING, TargetState.STOPPED])
@pytest.mark.parametrize(
    ("status", "health"),
    [
        (s, h)
        for s, h in itertools.product(ContainerStatus, Health)
        if s is not ContainerStatus.MISSING
    ],
)
def test_decide_covers_every_change_status_and_target(
    change: str, target: TargetState, status: ContainerStatus, health: Health
) -> None:
    old = want()
    fields, reason = CHANGES[change]
    new = want(rel(**fields), target=target)
    current = running(old, status=status, health=health)
    spec = lb.applied_spec(new.release, new.release.containers[0], new.generation)
    decision = decide(
        current, spec, target=target, image_id=IMAGES.get(spec.container.image), now=NOW
    )
    if change == "none":
        assert decision.action is STATE_RULES[target, status, health]
    else:
        assert decision.action is Action.RECREATE
        assert reason in decision.reason


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("image", "env", "image changed"),
        ("mounts", "env", "mounts changed"),
        ("env", "ports", "config changed"),
        ("image", "ports", "image changed"),
        ("mounts", "ports", "mounts changed"),
    ],
)
def test_decide_order_is_image_mounts_config_host(first: str, second: str, reason: str) -> None:
    fields = {**CHANGES[first][0], **CHANGES[second][0]}
    new = want(rel(**fields))
    spec = lb.applied_spec(new.release, new.release.containers[0], 0)
    assert decide(running(want()), spec).reason.startswith(reason)


def test_decide_missing_unreadable_generation_release_and_moved_tag() -> None:
    d = want()
    spec = lb.applied_spec(d.release, d.release.containers[0], 0)
    assert decide(None, spec).action is Action.CREATE
    unreadable = running(d).__class__(**{**running(d).__dict__, "spec": None})
    assert decide(unreadable, spec).reason == "labels unreadable"
    bumped = lb.applied_spec(d.release, d.release.containers[0], 1)
    assert decide(running(d), bumped).reason == "redeploy (generation 1)"
    v2 = lb.applied_spec(rel("2.0.0"), rel("2.0.0").containers[0], 0)
    assert decide(running(d), v2).reason == "config changed"
    moved = decide(running(d), spec, image_id="sha256:new")
    assert (moved.action, moved.reason) == (Action.RECREATE, f"image {IMAGE} was updated")


def test_decide_waits_for_the_grace_period_without_a_health_check() -> None:
    d = want(rel(health_check=None))
    spec = lb.applied_spec(d.release, d.release.containers[0], 0)
    fresh = running(d, health=Health.NONE, started=NOW - timedelta(seconds=2))
    old = running(d, health=Health.NONE, started=NOW - timedelta(seconds=6))
    assert decide(fresh, spec, now=NOW, grace_s=5).action is Action.WAIT
    assert decide(old, spec, now=NOW, grace_s=5).action is Action.NONE


# -- plan() --------------------------------------------------------------------------------


def test_fresh_deploy_creates_everything_in_order() -> None:
    d = want()
    steps = plan(Observed(images=IMAGES), d, CTX)
    assert actions(steps) == [
        "create_network",
        "create_network",
        "create_volume",
        "create_volume",
        "create_container",
        "start_container",
        "wait_healthy",
    ]


def test_created_objects_carry_the_device_and_are_named_per_device() -> None:
    d = want()
    creates = [s for s in plan(Observed(images=IMAGES), d, CTX) if s.action.startswith("create")]
    for step in creates:
        if isinstance(step, CreateContainer):
            assert step.device_id == DEV
            assert lb.container_labels(DEV, DEP, step.spec)[lb.DEVICE] == DEV
        else:
            assert isinstance(step, CreateNetwork | CreateVolume)
            assert step.labels[lb.DEVICE] == DEV
    other = PlanContext(now=NOW, device_id="dev-2")
    theirs = {getattr(s, "name", None) for s in plan(Observed(images=IMAGES), d, other)}
    assert theirs.isdisjoint({getattr(s, "name", None) for s in creates})


def test_missing_image_is_pulled_first_with_its_credentials_label_only() -> None:
    d = want(rel(image="registry.example:5000/acme/app:v9", credentials="private"))
    steps = plan(world(d), d, CTX)
    assert actions(steps)[0] == "pull_image"
    pull = steps[0]
    assert isinstance(pull, PullImage)
    assert (pull.image, pull.credentials) == ("registry.example:5000/acme/app:v9", "private")


def test_converged_deployment_plans_nothing() -> None:
    d = want()
    assert plan(world(d, running(d)), d, CTX) == []


@pytest.mark.parametrize("health", [Health.UNHEALTHY, Health.HEALTHY])
def test_unhealthy_container_is_left_for_assess(health: Health) -> None:
    d = want()
    assert plan(world(d, running(d, health=health)), d, CTX) == []


def test_target_stopped_stops_and_keeps() -> None:
    d = want(target=TargetState.STOPPED)
    assert actions(plan(world(d, running(d)), d, CTX)) == ["stop_container"]
    stopped = running(d, status=ContainerStatus.EXITED)
    assert plan(world(d, stopped), d, CTX) == []


def test_target_stopped_creates_missing_containers_without_starting_them() -> None:
    d = want(target=TargetState.STOPPED)
    assert actions(plan(world(d), d, CTX)) == ["create_container"]


def test_stopped_container_is_started_and_awaited() -> None:
    d = want()
    steps = plan(world(d, running(d, status=ContainerStatus.EXITED)), d, CTX)
    assert actions(steps) == ["start_container", "wait_healthy"]


def test_starting_container_is_awaited() -> None:
    d = want()
    steps = plan(world(d, running(d, health=Health.STARTING)), d, CTX)
    assert actions(steps) == ["wait_healthy"]


@pytest.mark.parametrize("change", sorted(set(CHANGES) - {"none", "networks"}))
def test_changed_container_is_replaced_new_first(change: str) -> None:
    old = want()
    new = want(rel(**CHANGES[change][0]))
    steps = plan(world(new, running(old)), new, CTX)
    assert actions(steps) == [
        "create_container",
        "stop_container",
        "remove_container",
        "start_container",
        "wait_healthy",
    ]


def test_generation_bump_recreates() -> None:
    d = want()
    redeploy = want(generation=1)
    steps = plan(world(d, running(d)), redeploy, CTX)
    assert actions(steps) == [
        "create_container",
        "stop_container",
        "remove_container",
        "start_container",
        "wait_healthy",
    ]
    assert steps[0].reason == "redeploy (generation 1)"


def test_moved_tag_frees_the_same_name_first() -> None:
    d = want()
    current = running(d).__class__(**{**running(d).__dict__, "image_id": "sha256:old"})
    steps = plan(world(d, current), d, CTX)
    assert actions(steps) == ["stop_container", "remove_container"]


def test_orphan_containers_are_removed() -> None:
    d = want()
    orphan = ObservedContainer(
        id="o1",
        name="fw-x-gone",
        deployment_id=DEP,
        container="gone",
        release="1.0.0",
        spec_hash="zzz",
        generation=0,
        spec=None,
        status=ContainerStatus.EXITED,
    )
    steps = plan(world(d, running(d), orphan), d, CTX)
    assert actions(steps) == ["remove_container"]


def test_other_deployments_are_ignored() -> None:
    d = want()
    foreign = ObservedContainer(
        id="f1",
        name="fw-other",
        deployment_id="dep-2",
        container="web",
        release="1.0.0",
        spec_hash="x",
        generation=0,
        spec=None,
        status=ContainerStatus.RUNNING,
    )
    assert plan(world(d, running(d), foreign), d, CTX) == []


def test_unused_network_is_removed_once_no_container_uses_it() -> None:
    d = want()
    extra = ObservedNetwork(
        id="n-x", name=lb.network_name(DEV, DEP, "old"), deployment_id=DEP, spec_hash=""
    )
    observed = Observed(
        containers=(running(d),),
        networks=(*infra(d)["networks"], extra),
        volumes=infra(d)["volumes"],
        images=IMAGES,
    )
    assert actions(plan(observed, d, CTX)) == ["remove_network"]
    user = running(d).__class__(**{**running(d).__dict__, "networks": frozenset({extra.name})})
    observed_used = Observed(
        containers=(user,),
        networks=(*infra(d)["networks"], extra),
        volumes=infra(d)["volumes"],
        images=IMAGES,
    )
    assert "remove_network" not in actions(plan(observed_used, d, CTX))


def test_upgrade_pulls_first_creates_new_stops_old_and_keeps_it() -> None:
    v1 = rel("1.0.0")
    v2 = rel("2.0.0", image="acme/app:v3")
    up = want(v2, previous_release=v1)
    old = running(want(v1))
    steps = plan(world(up, old), up, CTX)
    assert actions(steps) == [
        "pull_image",
        "create_container",
        "stop_container",
        "start_container",
        "wait_healthy",
    ]
    assert steps[2].reason == "upgrade: previous release"
    new = running(up, cid="c2")
    stopped_old = running(want(v1), status=ContainerStatus.EXITED)
    assert plan(world(up, stopped_old, new), up, CTX) == []  # old kept until the commit
    committed = want(v2)
    assert actions(plan(world(committed, stopped_old, new), committed, CTX)) == ["remove_container"]


def test_rollback_removes_new_and_restarts_old() -> None:
    v1, v2 = rel("1.0.0"), rel("2.0.0")
    back = want(v1, rollback_reason="unhealthy")
    old = running(want(v1), status=ContainerStatus.EXITED)
    new = running(want(v2), cid="c2", health=Health.UNHEALTHY)
    steps = plan(world(back, old, new), back, CTX)
    assert actions(steps) == [
        "stop_container",
        "remove_container",
        "start_container",
        "wait_healthy",
    ]
    assert steps[2].container_id == old.id  # type: ignore[union-attr]


@pytest.mark.parametrize("purge", [False, True])
def test_delete_removes_containers_and_networks_volumes_only_on_purge(purge: bool) -> None:
    d = want(target=TargetState.DELETED, purge_volumes=purge)
    steps = plan(world(d, running(d)), d, CTX)
    expected = ["stop_container", "remove_container", "remove_network", "remove_network"]
    assert actions(steps) == expected + (["remove_volume"] * 2 if purge else [])
    assert plan(Observed(), d, CTX) == []


# -- assess() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "status", "health", "ok", "state"),
    [
        (
            TargetState.RUNNING,
            ContainerStatus.RUNNING,
            Health.HEALTHY,
            True,
            DeploymentState.RUNNING,
        ),
        (TargetState.RUNNING, ContainerStatus.RUNNING, Health.NONE, True, DeploymentState.RUNNING),
        (
            TargetState.RUNNING,
            ContainerStatus.RUNNING,
            Health.UNHEALTHY,
            False,
            DeploymentState.ERROR,
        ),
        (TargetState.RUNNING, ContainerStatus.EXITED, Health.NONE, False, DeploymentState.ERROR),
        (
            TargetState.RUNNING,
            ContainerStatus.RESTARTING,
            Health.NONE,
            False,
            DeploymentState.ERROR,
        ),
        (TargetState.STOPPED, ContainerStatus.EXITED, Health.NONE, True, DeploymentState.STOPPED),
        (
            TargetState.STOPPED,
            ContainerStatus.RUNNING,
            Health.HEALTHY,
            False,
            DeploymentState.ERROR,
        ),
    ],
)
def test_assess(
    target: TargetState, status: ContainerStatus, health: Health, ok: bool, state: DeploymentState
) -> None:
    d = want(target=target)
    result = assess(world(d, running(d, status=status, health=health)), d)
    assert (result.ok, result.state) == (ok, state)


def test_assess_missing_and_deleted() -> None:
    d = want()
    assert assess(world(d), d).reason == "web is missing"
    gone = want(target=TargetState.DELETED)
    assert assess(Observed(), gone).state is DeploymentState.DELETED
    assert not assess(world(gone, running(gone)), gone).ok
