"""``/v1/tokens``: API tokens (admin only)."""

from fastapi import APIRouter, Response
from sqlmodel import select

from fleetwire.cloud.api.deps import AdminDep, SessionDep
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES, ProblemError
from fleetwire.cloud.api.schemas import TokenCreate, TokenCreated, TokenPublic
from fleetwire.cloud.auth import Role, create_token, hash_token
from fleetwire.cloud.db.tables import ApiToken

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201)
def create(body: TokenCreate, session: SessionDep, _token: AdminDep) -> TokenCreated:
    """Create a token; its value is shown in this answer only."""
    token = create_token(session, Role(body.role), body.name)
    session.commit()
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    return TokenCreated(**row.model_dump(exclude={"token_hash"}), token=token)


@router.get("")
def list_tokens(session: SessionDep, _token: AdminDep) -> list[TokenPublic]:
    """Every token's metadata."""
    return [
        TokenPublic.model_validate(t, from_attributes=True)
        for t in session.exec(select(ApiToken).order_by(ApiToken.id))
    ]


@router.delete("/{token_id}", status_code=204)
def revoke(token_id: str, session: SessionDep, _token: AdminDep) -> Response:
    """Revoke a token."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise ProblemError(404, f"token {token_id!r} does not exist")
    row.revoked = True
    session.add(row)
    session.commit()
    return Response(status_code=204)
