"""``/v1/deployments``: deploy releases to devices and act on deployments (202 + command id)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Body
from sqlmodel import Session, col, select

from fleetwire.cloud.api.deps import (
    NotifierDep,
    SessionDep,
    SettingsDep,
    TokenDep,
    TraceparentDep,
)
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES, ProblemError
from fleetwire.cloud.api.schemas import (
    Accepted,
    ActionRequest,
    ContainerPublic,
    DeploymentCreate,
    DeploymentPublic,
    DeploymentsAccepted,
)
from fleetwire.cloud.db.tables import (
    Application,
    Container,
    Deployment,
    Device,
    ImageCredential,
    Release,
)
from fleetwire.cloud.outbox import enqueue
from fleetwire.protocol.commands import (
    DeleteCommand,
    DeleteData,
    DeployCommand,
    DeployData,
    DeploymentCommandData,
    RedeployCommand,
    StartCommand,
    StopCommand,
    UpgradeCommand,
    UpgradeData,
)
from fleetwire.protocol.envelope import CommandEnvelope, utcnow
from fleetwire.protocol.ids import new_id
from fleetwire.protocol.registry import type_of
from fleetwire.protocol.release import ReleaseSpec

router = APIRouter(prefix="/deployments", tags=["deployments"], responses=PROBLEM_RESPONSES)

Action = Literal["start", "stop", "upgrade", "redeploy", "delete"]

# Reported states in which each action makes sense; anything else is a 409.
_SETTLED = {"running", "stopped", "error", "rolled_back"}
ALLOWED_STATES: dict[str, set[str]] = {
    "start": {"stopped", "error", "rolled_back"},
    "stop": {
        "pending",
        "pulling",
        "creating",
        "starting",
        "running",
        "upgrading",
        "error",
        "rolled_back",
    },
    "upgrade": _SETTLED,
    "redeploy": _SETTLED,
    "delete": {
        "pending",
        "pulling",
        "creating",
        "starting",
        "running",
        "stopped",
        "upgrading",
        "rolled_back",
        "error",
    },
}
_COMMAND_CLASS: dict[str, type[CommandEnvelope]] = {
    "deploy": DeployCommand,
    "start": StartCommand,
    "stop": StopCommand,
    "upgrade": UpgradeCommand,
    "redeploy": RedeployCommand,
    "delete": DeleteCommand,
}
_DESIRED_STATE = {
    "start": "running",
    "stop": "stopped",
    "upgrade": "running",
    "redeploy": "running",
    "delete": "deleted",
}


def deployment_public(session: Session, row: Deployment) -> DeploymentPublic:
    """A deployment with its containers."""
    containers = session.exec(
        select(Container).where(Container.deployment_id == row.id).order_by(col(Container.name))
    )
    return DeploymentPublic(
        **row.model_dump(exclude={"application_id"}),
        containers=[ContainerPublic.model_validate(c, from_attributes=True) for c in containers],
    )


def _resolve_release(session: Session, body: DeploymentCreate) -> tuple[Release, Application]:
    if body.release_id is not None:
        release = session.get(Release, body.release_id)
        if release is None:
            raise ProblemError(422, f"release {body.release_id!r} does not exist")
        application = session.get(Application, release.application_id)
        assert application is not None
        return release, application
    application = session.exec(
        select(Application).where(Application.name == body.application)
    ).first()
    if application is None:
        raise ProblemError(422, f"application {body.application!r} does not exist")
    release = session.exec(
        select(Release).where(
            Release.application_id == application.id, Release.version == body.version
        )
    ).first()
    if release is None:
        raise ProblemError(422, f"{application.name} has no release {body.version!r}")
    return release, application


def _device_problems(
    device: Device | None, device_id: str, spec: ReleaseSpec, needed: str
) -> list[str]:
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


def _credential_refs(spec: ReleaseSpec) -> list[str]:
    return sorted({c.credentials for c in spec.containers if c.credentials})


def _check_credentials(session: Session, spec: ReleaseSpec) -> None:
    refs = _credential_refs(spec)
    if not refs:
        return
    known = set(
        session.exec(select(ImageCredential.label).where(col(ImageCredential.label).in_(refs)))
    )
    if missing := [r for r in refs if r not in known]:
        raise ProblemError(422, f"the release uses unknown image credentials {missing}")


def _accepted(command_id: str, device_id: str, deployment_id: str | None) -> Accepted:
    return Accepted(
        command_id=command_id,
        device_id=device_id,
        deployment_id=deployment_id,
        status_url=f"/v1/commands/{command_id}",
    )


@router.post("", status_code=202)
def create_deployments(
    body: DeploymentCreate,
    session: SessionDep,
    settings: SettingsDep,
    notify: NotifierDep,
    traceparent: TraceparentDep,
    _token: TokenDep,
) -> DeploymentsAccepted:
    """Deploy a release: one deployment and one ``deploy`` command per device.

    All or nothing: if any device cannot take the release (unknown, unsupported system model,
    ``deploy`` not announced in its birth message), nothing is stored and the answer lists why.
    """
    release, application = _resolve_release(session, body)
    spec = ReleaseSpec.model_validate(release.spec)
    needed = type_of(DeployCommand)
    device_ids = list(dict.fromkeys(body.device_ids))
    devices = {d.id: d for d in session.exec(select(Device).where(col(Device.id).in_(device_ids)))}
    problems = [p for i in device_ids for p in _device_problems(devices.get(i), i, spec, needed)]
    if problems:
        raise ProblemError(422, "the release cannot be deployed to every device", problems)
    _check_credentials(session, spec)
    now = utcnow()
    expires = now + settings.command_ttl
    items = []
    for device_id in device_ids:
        deployment_id = new_id()
        session.add(
            Deployment(
                id=deployment_id,
                device_id=device_id,
                application_id=application.id,
                application=application.name,
                desired_release_id=release.id,
                desired_version=release.version,
                state="pending",
                desired_state="running",
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        command = DeployCommand(
            data=DeployData(
                deployment_id=deployment_id, release=spec, health_timeout_s=body.health_timeout_s
            ),
            subject=deployment_id,
            time=now,
            expires=expires,
            traceparent=traceparent,
        )
        enqueue(
            session,
            command,
            device_id=device_id,
            deployment_id=deployment_id,
            credential_refs=_credential_refs(spec),
        )
        items.append(_accepted(command.id, device_id, deployment_id))
    release.deployed = True
    session.add(release)
    session.commit()
    notify()
    return DeploymentsAccepted(items=items)


@router.get("")
def list_deployments(
    session: SessionDep,
    _token: TokenDep,
    device_id: str | None = None,
    application: str | None = None,
    include_gone: bool = False,
) -> list[DeploymentPublic]:
    """Deployments, filtered by device or application."""
    query = select(Deployment).order_by(col(Deployment.id))
    if device_id is not None:
        query = query.where(Deployment.device_id == device_id)
    if application is not None:
        query = query.where(Deployment.application == application)
    if not include_gone:
        query = query.where(col(Deployment.gone).is_(False))
    return [deployment_public(session, d) for d in session.exec(query)]


def _find(session: Session, deployment_id: str) -> Deployment:
    row = session.get(Deployment, deployment_id)
    if row is None:
        raise ProblemError(404, f"deployment {deployment_id!r} does not exist")
    return row


@router.get("/{deployment_id}")
def get_deployment(deployment_id: str, session: SessionDep, _token: TokenDep) -> DeploymentPublic:
    """A deployment: desired and current release, state, every container's status and health."""
    return deployment_public(session, _find(session, deployment_id))


def _upgrade_target(session: Session, row: Deployment, body: ActionRequest) -> Release:
    if body.release_id is not None:
        target = session.get(Release, body.release_id)
    elif body.version is not None:
        target = session.exec(
            select(Release).where(
                Release.application_id == row.application_id, Release.version == body.version
            )
        ).first()
    else:
        raise ProblemError(422, "upgrade needs a target: release_id or version")
    if target is None:
        raise ProblemError(422, "the target release does not exist")
    if target.application_id != row.application_id:
        raise ProblemError(409, "upgrade must target a release of the same application")
    if target.id == row.desired_release_id:
        raise ProblemError(409, f"the deployment already runs release {target.version}")
    return target


@router.post("/{deployment_id}/actions/{action}", status_code=202)
def act(
    deployment_id: str,
    action: Action,
    *,
    session: SessionDep,
    settings: SettingsDep,
    notify: NotifierDep,
    traceparent: TraceparentDep,
    _token: TokenDep,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Accepted:
    """Start, stop, upgrade, redeploy or delete a deployment; 409 when its state forbids it."""
    body = body or ActionRequest()
    row = _find(session, deployment_id)
    if row.gone or row.desired_state == "deleted":
        raise ProblemError(409, f"deployment {deployment_id} is deleted")
    if row.state not in ALLOWED_STATES[action]:
        raise ProblemError(409, f"cannot {action} a deployment that is {row.state}")
    cls = _COMMAND_CLASS[action]
    device = session.get(Device, row.device_id)
    assert device is not None
    if type_of(cls) not in device.protocol_types:
        raise ProblemError(
            422, f"device {row.device_id} did not announce {type_of(cls)} in its birth message"
        )
    now = utcnow()
    envelope = {
        "subject": deployment_id,
        "time": now,
        "expires": now + settings.command_ttl,
        "traceparent": traceparent,
    }
    refs: list[str] = []
    data: DeploymentCommandData
    if action == "upgrade":
        target = _upgrade_target(session, row, body)
        spec = ReleaseSpec.model_validate(target.spec)
        if not spec.supports(device.system_model or device.reported_system_model):
            raise ProblemError(422, f"release {target.version} does not support this device")
        _check_credentials(session, spec)
        refs = _credential_refs(spec)
        data = UpgradeData(
            deployment_id=deployment_id, release=spec, health_timeout_s=body.health_timeout_s
        )
        row.desired_release_id = target.id
        row.desired_version = target.version
        target.deployed = True
        session.add(target)
    elif action == "delete":
        data = DeleteData(deployment_id=deployment_id, purge_volumes=body.purge_volumes)
    else:
        data = DeploymentCommandData(deployment_id=deployment_id)
    message = cls.model_validate({**envelope, "data": data})
    row.desired_state = _DESIRED_STATE[action]
    row.updated_at = now
    session.add(row)
    enqueue(
        session, message, device_id=row.device_id, deployment_id=deployment_id, credential_refs=refs
    )
    session.commit()
    notify()
    return _accepted(message.id, row.device_id, deployment_id)
