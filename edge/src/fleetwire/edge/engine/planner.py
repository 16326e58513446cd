"""The pure planner: ``plan(observed, desired, ctx) -> list[Step]``. No Docker in here.

One round of a convergence loop: the reconciler executes the steps, observes again and plans
again until the plan is empty. Rules, in the order the steps are emitted:

1. pull the images of containers to be created that are not local;
2. create missing networks and volumes;
3. create missing or changed containers (new names: the name holds the spec hash);
4. stop what must stop: the previous release during an upgrade (kept for a rollback), orphans
   and replaced containers, everything when the target is ``stopped``;
5. remove orphans and replaced containers (never the previous release during an upgrade);
6. remove networks no remaining container uses (volumes only on delete with purge);
7. start what must run, then wait for it to be healthy.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.images import normalize_ref
from fleetwire.edge.engine.observed import Observed, ObservedContainer
from fleetwire.edge.engine.steps import (
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    PullImage,
    RemoveContainer,
    RemoveNetwork,
    RemoveVolume,
    StartContainer,
    Step,
    StopContainer,
    WaitHealthy,
)
from fleetwire.edge.ports import DesiredDeployment, TargetState
from fleetwire.protocol.events import ContainerStatus, Health


class Action(StrEnum):
    """What one desired container needs."""

    NONE = "none"
    CREATE = "create"
    RECREATE = "recreate"
    START = "start"
    STOP = "stop"
    WAIT = "wait"


@dataclass(frozen=True)
class Decision:
    """An :class:`Action` and why."""

    action: Action
    reason: str = ""


@dataclass(frozen=True)
class PlanContext:
    """Everything besides the engine that the planner needs, fixed for one round.

    ``device_id`` goes into the names and labels of what the plan creates.
    """

    now: datetime
    device_id: str
    grace_s: float = 5.0
    health_timeout_s: float = 120.0


_STOPPABLE = frozenset(
    {ContainerStatus.RUNNING, ContainerStatus.RESTARTING, ContainerStatus.PAUSED}
)


def decide(
    current: ObservedContainer | None,
    desired: lb.AppliedSpec,
    *,
    target: TargetState = TargetState.RUNNING,
    image_id: str | None = None,
    now: datetime | None = None,
    grace_s: float = 5.0,
) -> Decision:
    """Decide for one container, in a fixed order: image, mounts, config, host config.

    ``image_id`` is the local id of the desired image, when present: a tag that now points to
    another image makes the container stale too.
    """
    if current is None:
        return Decision(Action.CREATE, "missing")
    have = current.spec
    if have is None:
        return Decision(Action.RECREATE, "labels unreadable")
    want = desired.container
    old = have.container
    if old.image != want.image:
        return Decision(Action.RECREATE, f"image changed: {old.image} -> {want.image}")
    if image_id and current.image_id and current.image_id != image_id:
        return Decision(Action.RECREATE, f"image {want.image} was updated")
    if (old.binds, old.volumes, have.volumes) != (want.binds, want.volumes, desired.volumes):
        return Decision(Action.RECREATE, "mounts changed")
    if (old.command, old.entrypoint, old.env, old.health_check) != (
        want.command,
        want.entrypoint,
        want.env,
        want.health_check,
    ) or (have.application, have.release) != (desired.application, desired.release):
        return Decision(Action.RECREATE, "config changed")
    if (
        old.ports,
        old.networks,
        have.networks,
        old.restart_policy,
        old.init,
        old.stop_timeout_s,
    ) != (
        want.ports,
        want.networks,
        desired.networks,
        want.restart_policy,
        want.init,
        want.stop_timeout_s,
    ):
        return Decision(Action.RECREATE, "host config changed")
    if have.generation != desired.generation:
        return Decision(Action.RECREATE, f"redeploy (generation {desired.generation})")
    if current.spec_hash != desired.spec_hash():
        return Decision(Action.RECREATE, "spec changed")
    return _decide_state(current, target, now, grace_s)


def _decide_state(
    current: ObservedContainer, target: TargetState, now: datetime | None, grace_s: float
) -> Decision:
    status = current.status
    if target is TargetState.STOPPED:
        return (
            Decision(Action.STOP, "target stopped")
            if status in _STOPPABLE
            else Decision(Action.NONE)
        )
    if status is ContainerStatus.DEAD:
        return Decision(Action.RECREATE, "dead")
    if status in (ContainerStatus.CREATED, ContainerStatus.EXITED, ContainerStatus.PAUSED):
        return Decision(Action.START, f"{status.value}")
    if status is ContainerStatus.RUNNING:
        if current.health is Health.STARTING:
            return Decision(Action.WAIT, "health starting")
        if (
            current.health is Health.NONE
            and now is not None
            and current.started_at is not None
            and (now - current.started_at).total_seconds() < grace_s
        ):
            return Decision(Action.WAIT, "grace period")
    # Unhealthy, restarting or removing: nothing a step can do; assess() reports it.
    return Decision(Action.NONE)


def desired_specs(desired: DesiredDeployment) -> list[lb.AppliedSpec]:
    """The applied specs of the desired release, in release order."""
    return [
        lb.applied_spec(desired.release, c, desired.generation) for c in desired.release.containers
    ]


def previous_hashes(desired: DesiredDeployment) -> frozenset[str]:
    """Spec hashes of the previous release's containers (during an upgrade)."""
    prev = desired.previous_release
    if prev is None:
        return frozenset()
    return frozenset(
        lb.applied_spec(prev, c, desired.generation).spec_hash() for c in prev.containers
    )


def _stop(c: ObservedContainer, reason: str) -> StopContainer:
    timeout = c.spec.container.stop_timeout_s if c.spec else 10
    return StopContainer(
        container_id=c.id, name=c.name, container=c.container, timeout_s=timeout, reason=reason
    )


def _plan_delete(obs: Observed, desired: DesiredDeployment) -> list[Step]:
    steps: list[Step] = []
    for c in obs.containers:
        if c.status in _STOPPABLE:
            steps.append(_stop(c, "delete"))
    steps.extend(
        RemoveContainer(container_id=c.id, name=c.name, container=c.container, reason="delete")
        for c in obs.containers
    )
    steps.extend(RemoveNetwork(network_id=n.id, name=n.name, reason="delete") for n in obs.networks)
    if desired.purge_volumes:
        steps.extend(RemoveVolume(name=v.name, reason="purge") for v in obs.volumes)
    return steps


@dataclass
class _Buckets:
    """Steps of one round, by kind; joined in the documented order."""

    pulls: list[Step] = field(default_factory=list)
    creates: list[Step] = field(default_factory=list)
    stops: list[Step] = field(default_factory=list)
    removes: list[Step] = field(default_factory=list)
    starts: list[Step] = field(default_factory=list)
    waits: list[Step] = field(default_factory=list)
    kept: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    pulled: set[str] = field(default_factory=set)

    def remove(self, c: ObservedContainer, reason: str) -> None:
        if c.status in _STOPPABLE:
            self.stops.append(_stop(c, reason))
        self.removes.append(
            RemoveContainer(container_id=c.id, name=c.name, container=c.container, reason=reason)
        )
        self.removed.add(c.id)


def plan(observed: Observed, desired: DesiredDeployment, ctx: PlanContext) -> list[Step]:
    """The next steps that bring ``observed`` closer to ``desired``; empty when converged."""
    obs = observed.of(desired.deployment_id)
    if desired.target is TargetState.DELETED:
        return _plan_delete(obs, desired)
    old_hashes = previous_hashes(desired)
    b = _Buckets()
    for spec in desired_specs(desired):
        _plan_container(b, spec, obs=obs, desired=desired, ctx=ctx, old_hashes=old_hashes)
    for c in obs.containers:
        if c.id in b.kept or c.id in b.removed:
            continue
        if c.spec_hash in old_hashes:
            if c.status in _STOPPABLE:
                b.stops.append(_stop(c, "upgrade: previous release"))
            continue
        b.remove(c, "replaced")
    net_steps, net_removes = _plan_networks(obs, desired, ctx.device_id, b.removed)
    vol_steps = _plan_volumes(obs, desired, ctx.device_id)
    return [
        *b.pulls,
        *net_steps,
        *vol_steps,
        *b.creates,
        *b.stops,
        *b.removes,
        *net_removes,
        *b.starts,
        *b.waits,
    ]


def _plan_container(
    b: _Buckets,
    spec: lb.AppliedSpec,
    *,
    obs: Observed,
    desired: DesiredDeployment,
    ctx: PlanContext,
    old_hashes: frozenset[str],
) -> None:
    c_spec = spec.container
    want_hash = spec.spec_hash()
    candidates = [c for c in obs.containers if c.container == c_spec.name]
    exact = next((c for c in candidates if c.spec_hash == want_hash), None)
    current = exact or next(
        (c for c in candidates if c.spec_hash not in old_hashes),
        candidates[0] if candidates else None,
    )
    ref = normalize_ref(c_spec.image)
    target = desired.target
    decision = decide(
        current, spec, target=target, image_id=obs.images.get(ref), now=ctx.now, grace_s=ctx.grace_s
    )
    act = decision.action
    if act in (Action.CREATE, Action.RECREATE):
        if exact is not None:
            # Same name (the tag now names another image, or it is dead): free the name first.
            b.remove(exact, decision.reason)
            return
        name = lb.container_name(ctx.device_id, desired.deployment_id, spec)
        if ref not in obs.images and ref not in b.pulled:
            b.pulled.add(ref)
            # The applied spec drops the credentials label: take it from the release itself.
            creds = next(c.credentials for c in desired.release.containers if c.name == c_spec.name)
            b.pulls.append(PullImage(image=c_spec.image, credentials=creds))
        b.creates.append(
            CreateContainer(
                device_id=ctx.device_id,
                deployment_id=desired.deployment_id,
                name=name,
                spec=spec,
                reason=decision.reason,
            )
        )
        if target is TargetState.RUNNING:
            b.starts.append(StartContainer(container_id=name, name=name, container=c_spec.name))
            b.waits.append(_wait(name, name, spec, ctx))
        return
    assert current is not None  # every other action has a current container
    b.kept.add(current.id)
    if act is Action.STOP:
        b.stops.append(_stop(current, decision.reason))
    elif act is Action.START:
        b.starts.append(
            StartContainer(
                container_id=current.id,
                name=current.name,
                container=c_spec.name,
                reason=decision.reason,
            )
        )
        b.waits.append(_wait(current.id, current.name, spec, ctx))
    elif act is Action.WAIT:
        b.waits.append(_wait(current.id, current.name, spec, ctx, decision.reason))


def _wait(
    ref: str, name: str, spec: lb.AppliedSpec, ctx: PlanContext, reason: str = ""
) -> WaitHealthy:
    check = spec.container.health_check
    return WaitHealthy(
        container_id=ref,
        name=name,
        container=spec.container.name,
        timeout_s=ctx.health_timeout_s,
        grace_s=ctx.grace_s,
        has_health_check=check is not None and check.test[0] != "NONE",
        reason=reason,
    )


def _plan_networks(
    obs: Observed, desired: DesiredDeployment, dev: str, removed: set[str]
) -> tuple[list[Step], list[Step]]:
    dep = desired.deployment_id
    wanted = {lb.network_name(dev, dep, n.name): n for n in desired.release.networks}
    if desired.previous_release is not None:
        keep_prev = {lb.network_name(dev, dep, n.name) for n in desired.previous_release.networks}
    else:
        keep_prev = set()
    present = {n.name: n for n in obs.networks}
    creates: list[Step] = [
        CreateNetwork(
            deployment_id=dep,
            name=name,
            spec=spec,
            labels={
                **lb.base_labels(dev, dep, desired.release),
                lb.SPEC_HASH: lb.object_hash(spec),
            },
        )
        for name, spec in wanted.items()
        if name not in present
    ]
    in_use = {net for c in obs.containers if c.id not in removed for net in c.networks}
    removes: list[Step] = [
        RemoveNetwork(network_id=n.id, name=n.name, reason="no longer in the release")
        for n in obs.networks
        if n.name not in wanted and n.name not in keep_prev and n.name not in in_use
    ]
    return creates, removes


def _plan_volumes(obs: Observed, desired: DesiredDeployment, dev: str) -> list[Step]:
    dep = desired.deployment_id
    present = {v.name for v in obs.volumes}
    return [
        CreateVolume(
            deployment_id=dep,
            name=lb.volume_name(dev, dep, v.name),
            spec=v,
            labels={**lb.base_labels(dev, dep, desired.release), lb.SPEC_HASH: lb.object_hash(v)},
        )
        for v in desired.release.volumes
        if lb.volume_name(dev, dep, v.name) not in present
    ]
