"""Deployments and their actions, apart from HTTP.

:func:`create_deployments` and :func:`act` check what the catalog, the read model and the action
table (:mod:`fleetwire.cloud.actions`) allow, then store the change, its command and the outbox
row in one transaction. They raise the cloud's errors (:mod:`fleetwire.cloud.errors`); the routes
turn those into problem documents.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from fleetwire.cloud.actions import DEPLOY, Action
from fleetwire.cloud.db.tables import Application, Deployment, Device, ImageCredential, Release
from fleetwire.cloud.errors import (
    ActionNotAllowed,
    Conflict,
    NotAnnounced,
    NotFound,
    Unprocessable,
)
from fleetwire.cloud.outbox import enqueue
from fleetwire.protocol.envelope import CommandEnvelope, utcnow
from fleetwire.protocol.events import DeploymentState
from fleetwire.protocol.ids import new_id
from fleetwire.protocol.release import ReleaseSpec


@dataclass(frozen=True)
class Issued:
    """A command stored for a device; the relay will send it."""

    command_id: str
    device_id: str
    deployment_id: str | None


@dataclass(frozen=True)
class ActionOptions:
    """Options of an action. A command takes those its ``data`` model has a field for."""

    release_id: str | None = None
    version: str | None = None
    purge_volumes: bool = False
    health_timeout_s: float = 120.0


@dataclass(frozen=True)
class Stamp:
    """What every command of one request shares: its trace and its lifetime."""

    traceparent: str
    ttl: timedelta


def resolve_release(
    session: Session, release_id: str | None, application: str | None, version: str | None
) -> tuple[Release, Application]:
    """The release named by id, or by application name and version."""
    if release_id is not None:
        release = session.get(Release, release_id)
        if release is None:
            raise Unprocessable(f"release {release_id!r} does not exist")
        app = session.get(Application, release.application_id)
        assert app is not None
        return release, app
    app = session.exec(select(Application).where(Application.name == application)).first()
    if app is None:
        raise Unprocessable(f"application {application!r} does not exist")
    release = session.exec(
        select(Release).where(Release.application_id == app.id, Release.version == version)
    ).first()
    if release is None:
        raise Unprocessable(f"{app.name} has no release {version!r}")
    return release, app


def device_problems(
    device: Device | None, device_id: str, spec: ReleaseSpec, needed: str
) -> list[str]:
    """Why ``device`` cannot take ``spec`` through a command of type ``needed`` (empty: it can)."""
    if device is None:
        return [f"device {device_id}: not registered"]
    problems = []
    model = device.system_model or device.reported_system_model
    if not spec.supports(model):
        problems.append(
            f"device {device_id}: system model {model!r} is not supported by "
            f"{spec.application} {spec.version} (supports {spec.system_models})"
        )
    if needed not in device.protocol_types:
        problems.append(
            f"device {device_id}: did not announce {needed} in its birth message"
            + ("" if device.protocol_types else " (no birth message received yet)")
        )
    return problems


def credential_refs(spec: ReleaseSpec) -> list[str]:
    """The image-credential labels a release uses, sorted."""
    return sorted({c.credentials for c in spec.containers if c.credentials})


def check_credentials(session: Session, spec: ReleaseSpec) -> None:
    """Refuse a release that names image credentials the catalog does not have."""
    refs = credential_refs(spec)
    if not refs:
        return
    known = set(
        session.exec(select(ImageCredential.label).where(col(ImageCredential.label).in_(refs)))
    )
    if missing := [r for r in refs if r not in known]:
        raise Unprocessable(f"the release uses unknown image credentials {missing}")


def _command(
    action: Action, data: dict[str, Any], deployment_id: str, stamp: Stamp, now: datetime
) -> CommandEnvelope:
    return action.command.model_validate(
        {
            "data": action.data.model_validate({"deployment_id": deployment_id, **data}),
            "subject": deployment_id,
            "time": now,
            "expires": now + stamp.ttl,
            "traceparent": stamp.traceparent,
        }
    )


def _options_for(action: Action, options: ActionOptions) -> dict[str, Any]:
    return {k: v for k, v in asdict(options).items() if k in action.data.model_fields}


def create_deployments(
    session: Session,
    *,
    release_id: str | None,
    application: str | None,
    version: str | None,
    device_ids: list[str],
    health_timeout_s: float,
    stamp: Stamp,
) -> list[Issued]:
    """Deploy a release: one deployment and one ``deploy`` command per device, committed.

    All or nothing: if any device cannot take the release (unknown, unsupported system model,
    ``deploy`` not announced in its birth message), nothing is stored and the error lists why.
    """
    release, app = resolve_release(session, release_id, application, version)
    spec = ReleaseSpec.model_validate(release.spec)
    device_ids = list(dict.fromkeys(device_ids))
    devices = {d.id: d for d in session.exec(select(Device).where(col(Device.id).in_(device_ids)))}
    problems = [
        p for i in device_ids for p in device_problems(devices.get(i), i, spec, DEPLOY.command_type)
    ]
    if problems:
        raise Unprocessable("the release cannot be deployed to every device", problems)
    check_credentials(session, spec)
    refs = credential_refs(spec)
    options = _options_for(DEPLOY, ActionOptions(health_timeout_s=health_timeout_s))
    desired = DEPLOY.desired_state
    assert desired is not None, "the action table gives deploy a desired state"
    now = utcnow()
    issued = []
    for device_id in device_ids:
        deployment_id = new_id()
        session.add(
            Deployment(
                id=deployment_id,
                device_id=device_id,
                application_id=app.id,
                application=app.name,
                desired_release_id=release.id,
                desired_version=release.version,
                state=DeploymentState.PENDING,
                desired_state=desired,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        command = _command(DEPLOY, {"release": spec, **options}, deployment_id, stamp, now)
        enqueue(
            session,
            command,
            device_id=device_id,
            deployment_id=deployment_id,
            credential_refs=refs,
        )
        issued.append(Issued(command.id, device_id, deployment_id))
    release.deployed = True
    session.add(release)
    session.commit()
    return issued


def find(session: Session, deployment_id: str) -> Deployment:
    """A deployment, or :class:`NotFound`."""
    row = session.get(Deployment, deployment_id)
    if row is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    return row


def _target_release(
    session: Session, action: Action, row: Deployment, options: ActionOptions
) -> Release:
    if options.release_id is not None:
        target = session.get(Release, options.release_id)
    elif options.version is not None:
        target = session.exec(
            select(Release).where(
                Release.application_id == row.application_id, Release.version == options.version
            )
        ).first()
    else:
        raise Unprocessable(f"{action.name} needs a target: release_id or version")
    if target is None:
        raise Unprocessable("the target release does not exist")
    if target.application_id != row.application_id:
        raise Conflict(f"{action.name} must target a release of the same application")
    if target.id == row.desired_release_id:
        raise Conflict(f"the deployment already runs release {target.version}")
    return target


def check_allowed(action: Action, row: Deployment) -> None:
    """Refuse an action the deployment's reported state (or its deletion) does not allow."""
    if row.gone or row.desired_state == DeploymentState.DELETED:
        raise ActionNotAllowed(f"deployment {row.id} is deleted")
    if not action.allows(row.state):
        raise ActionNotAllowed(f"cannot {action.name} a deployment that is {row.state}")


def act(
    session: Session,
    deployment_id: str,
    action: Action,
    options: ActionOptions,
    *,
    stamp: Stamp,
) -> Issued:
    """Act on a deployment: record the new desired state and store the command, committed.

    An action that ``needs_release`` targets another release of the same application
    (``options.release_id`` or ``options.version``).
    """
    row = find(session, deployment_id)
    check_allowed(action, row)
    device = session.get(Device, row.device_id)
    assert device is not None
    if action.command_type not in device.protocol_types:
        raise NotAnnounced(
            f"device {row.device_id} did not announce {action.command_type} in its birth message"
        )
    now = utcnow()
    data = _options_for(action, options)
    refs: list[str] = []
    if action.needs_release:
        target = _target_release(session, action, row, options)
        spec = ReleaseSpec.model_validate(target.spec)
        if not spec.supports(device.system_model or device.reported_system_model):
            raise Unprocessable(f"release {target.version} does not support this device")
        check_credentials(session, spec)
        refs = credential_refs(spec)
        data["release"] = spec
        row.desired_release_id = target.id
        row.desired_version = target.version
        target.deployed = True
        session.add(target)
    command = _command(action, data, deployment_id, stamp, now)
    if action.desired_state is not None:
        row.desired_state = action.desired_state
    row.updated_at = now
    session.add(row)
    enqueue(
        session, command, device_id=row.device_id, deployment_id=deployment_id, credential_refs=refs
    )
    session.commit()
    return Issued(command.id, row.device_id, deployment_id)
