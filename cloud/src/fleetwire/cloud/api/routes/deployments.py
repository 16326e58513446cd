"""``/v1/deployments``: deploy releases to devices and act on deployments (202 + command id).

The rules live in :mod:`fleetwire.cloud.deployments` and the action table in
:mod:`fleetwire.cloud.actions`; this module maps them to HTTP.
"""

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Body
from sqlmodel import Session, col, select

from fleetwire.cloud import deployments as service
from fleetwire.cloud.actions import ACTIONS, DEPLOYMENT_ACTIONS
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
from fleetwire.cloud.db.tables import Container, Deployment
from fleetwire.cloud.errors import CloudError, Unprocessable

router = APIRouter(prefix="/deployments", tags=["deployments"], responses=PROBLEM_RESPONSES)

_NAMES = tuple(a.name for a in DEPLOYMENT_ACTIONS)
if TYPE_CHECKING:
    ActionName = str
else:
    # The path parameter's schema (an enum of names) and its validation come from the table.
    ActionName = Literal[_NAMES]


def _problem(exc: CloudError) -> ProblemError:
    """The problem document of a domain error."""
    errors = exc.errors if isinstance(exc, Unprocessable) else None
    return ProblemError(exc.status, str(exc), errors)


def deployment_public(session: Session, row: Deployment) -> DeploymentPublic:
    """A deployment with its containers."""
    containers = session.exec(
        select(Container).where(Container.deployment_id == row.id).order_by(col(Container.name))
    )
    return DeploymentPublic(
        **row.model_dump(exclude={"application_id"}),
        containers=[ContainerPublic.model_validate(c, from_attributes=True) for c in containers],
    )


def _accepted(issued: service.Issued) -> Accepted:
    return Accepted(
        command_id=issued.command_id,
        device_id=issued.device_id,
        deployment_id=issued.deployment_id,
        status_url=f"/v1/commands/{issued.command_id}",
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
    try:
        issued = service.create_deployments(
            session,
            release_id=body.release_id,
            application=body.application,
            version=body.version,
            device_ids=list(body.device_ids),
            health_timeout_s=body.health_timeout_s,
            stamp=service.Stamp(traceparent, settings.command_ttl),
        )
    except CloudError as exc:
        raise _problem(exc) from None
    notify()
    return DeploymentsAccepted(items=[_accepted(i) for i in issued])


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


@router.get("/{deployment_id}")
def get_deployment(deployment_id: str, session: SessionDep, _token: TokenDep) -> DeploymentPublic:
    """A deployment: desired and current release, state, every container's status and health."""
    try:
        row = service.find(session, deployment_id)
    except CloudError as exc:
        raise _problem(exc) from None
    return deployment_public(session, row)


@router.post(
    "/{deployment_id}/actions/{action}",
    status_code=202,
    description=f"{', '.join(_NAMES[:-1]).capitalize()} or {_NAMES[-1]} a deployment; "
    "409 when its state forbids it.",
)
def act(
    deployment_id: str,
    action: ActionName,
    *,
    session: SessionDep,
    settings: SettingsDep,
    notify: NotifierDep,
    traceparent: TraceparentDep,
    _token: TokenDep,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Accepted:
    """Act on a deployment (an action of the table); 409 when its state forbids it."""
    body = body or ActionRequest()
    try:
        issued = service.act(
            session,
            deployment_id,
            ACTIONS[action],
            service.ActionOptions(**body.model_dump()),
            stamp=service.Stamp(traceparent, settings.command_ttl),
        )
    except CloudError as exc:
        raise _problem(exc) from None
    notify()
    return _accepted(issued)
