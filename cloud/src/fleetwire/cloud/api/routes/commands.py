"""``/v1/commands``: the status of commands."""

from fastapi import APIRouter, Query
from sqlmodel import col, select

from fleetwire.cloud.api.deps import SessionDep, TokenDep
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES, ProblemError
from fleetwire.cloud.api.schemas import CommandPublic
from fleetwire.cloud.db.tables import Command

router = APIRouter(prefix="/commands", tags=["commands"], responses=PROBLEM_RESPONSES)


@router.get("/{command_id}")
def get_command(command_id: str, session: SessionDep, _token: TokenDep) -> CommandPublic:
    """A command's status: pending, sent, accepted, succeeded, failed, rejected or expired."""
    row = session.get(Command, command_id)
    if row is None:
        raise ProblemError(404, f"command {command_id!r} does not exist")
    return CommandPublic.model_validate(row, from_attributes=True)


@router.get("")
def list_commands(
    session: SessionDep,
    _token: TokenDep,
    device_id: str | None = None,
    deployment_id: str | None = None,
    status: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[CommandPublic]:
    """Recent commands, newest first."""
    query = select(Command).order_by(col(Command.id).desc()).limit(limit)
    if device_id is not None:
        query = query.where(Command.device_id == device_id)
    if deployment_id is not None:
        query = query.where(Command.deployment_id == deployment_id)
    if status is not None:
        query = query.where(Command.status == status)
    return [CommandPublic.model_validate(c, from_attributes=True) for c in session.exec(query)]
