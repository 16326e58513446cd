"""``/v1/devices``: registration and the presence read model."""

from fastapi import APIRouter
from sqlmodel import Session, col, select

from fleetwire.cloud.api.deps import SessionDep, TokenDep
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES, ProblemError, commit_or_conflict
from fleetwire.cloud.api.routes.deployments import deployment_public
from fleetwire.cloud.api.schemas import DeploymentPublic, DeviceCreate, DevicePublic, DeviceUpdate
from fleetwire.cloud.db.tables import Deployment, Device

router = APIRouter(prefix="/devices", tags=["devices"], responses=PROBLEM_RESPONSES)


def device_public(row: Device) -> DevicePublic:
    """The public form of a device."""
    return DevicePublic.model_validate(row, from_attributes=True)


def find_device(session: Session, device_id: str) -> Device:
    """A device, or 404."""
    row = session.get(Device, device_id)
    if row is None:
        raise ProblemError(404, f"device {device_id!r} does not exist")
    return row


@router.post("", status_code=201)
def register_device(body: DeviceCreate, session: SessionDep, _token: TokenDep) -> DevicePublic:
    """Register a device. Nothing secret is returned: broker credentials are managed in the
    broker's password file. A device that already sent presence is adopted."""
    row = session.get(Device, body.id)
    if row is not None and row.registered:
        raise ProblemError(409, f"device {body.id!r} is already registered")
    row = row or Device(id=body.id)
    row.registered = True
    row.system_model = body.system_model
    row.tags = list(body.tags)
    session.add(row)
    commit_or_conflict(session, f"device {body.id!r} is already registered")
    return device_public(row)


@router.get("")
def list_devices(
    session: SessionDep, _token: TokenDep, tag: str | None = None, online: bool | None = None
) -> list[DevicePublic]:
    """Devices (registered or seen), by id; filter by tag or presence."""
    query = select(Device).order_by(Device.id)
    if online is not None:
        query = query.where(Device.online == online)
    rows = [device_public(d) for d in session.exec(query)]
    return [d for d in rows if tag is None or tag in d.tags]


@router.get("/{device_id}")
def get_device(device_id: str, session: SessionDep, _token: TokenDep) -> DevicePublic:
    """A device with its presence."""
    return device_public(find_device(session, device_id))


@router.patch("/{device_id}")
def update_device(
    device_id: str, body: DeviceUpdate, session: SessionDep, _token: TokenDep
) -> DevicePublic:
    """Change a device's system model or tags."""
    row = find_device(session, device_id)
    if body.system_model is not None:
        row.system_model = body.system_model
    if body.tags is not None:
        row.tags = list(body.tags)
    row.registered = True
    session.add(row)
    session.commit()
    return device_public(row)


@router.get("/{device_id}/deployments")
def list_device_deployments(
    device_id: str, session: SessionDep, _token: TokenDep
) -> list[DeploymentPublic]:
    """The deployments of a device, with their containers."""
    find_device(session, device_id)
    rows = session.exec(
        select(Deployment).where(Deployment.device_id == device_id).order_by(col(Deployment.id))
    )
    return [deployment_public(session, d) for d in rows]
