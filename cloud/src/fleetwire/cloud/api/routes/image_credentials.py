"""``/v1/image-credentials``: registry credentials with a write-only, encrypted secret."""

from fastapi import APIRouter, Response
from sqlmodel import Session, select

from fleetwire.cloud.api.deps import AdminDep, SecretBoxDep, SessionDep, TokenDep
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES, ProblemError, commit_or_conflict
from fleetwire.cloud.api.schemas import (
    ImageCredentialCreate,
    ImageCredentialPublic,
    ImageCredentialUpdate,
)
from fleetwire.cloud.db.tables import ImageCredential
from fleetwire.protocol.ids import new_id

router = APIRouter(prefix="/image-credentials", tags=["catalog"], responses=PROBLEM_RESPONSES)


def _public(row: ImageCredential) -> ImageCredentialPublic:
    return ImageCredentialPublic(
        id=row.id,
        label=row.label,
        registry=row.registry_host,
        username=row.username,
        created_at=row.created_at,
    )


def _find(session: Session, key: str) -> ImageCredential:
    row = (
        session.get(ImageCredential, key)
        or session.exec(select(ImageCredential).where(ImageCredential.label == key)).first()
    )
    if row is None:
        raise ProblemError(404, f"image credential {key!r} does not exist")
    return row


@router.post("", status_code=201)
def create_credential(
    body: ImageCredentialCreate, session: SessionDep, box: SecretBoxDep, _token: AdminDep
) -> ImageCredentialPublic:
    """Store credentials (admin). The answer never contains the secret."""
    row = ImageCredential(
        id=new_id(),
        label=body.label,
        registry_host=body.registry,
        username=body.username,
        secret_encrypted=box.encrypt(body.secret.get_secret_value()),
    )
    session.add(row)
    commit_or_conflict(session, f"image credential {body.label!r} already exists")
    return _public(row)


@router.get("")
def list_credentials(session: SessionDep, _token: TokenDep) -> list[ImageCredentialPublic]:
    """Every credential, without secrets."""
    return [
        _public(r) for r in session.exec(select(ImageCredential).order_by(ImageCredential.label))
    ]


@router.get("/{key}")
def get_credential(key: str, session: SessionDep, _token: TokenDep) -> ImageCredentialPublic:
    """A credential by id or label, without its secret."""
    return _public(_find(session, key))


@router.patch("/{key}")
def update_credential(
    key: str,
    body: ImageCredentialUpdate,
    session: SessionDep,
    box: SecretBoxDep,
    _token: AdminDep,
) -> ImageCredentialPublic:
    """Rotate the user name or secret (admin); later deploy commands use the new values."""
    row = _find(session, key)
    if body.username is not None:
        row.username = body.username
    if body.secret is not None:
        row.secret_encrypted = box.encrypt(body.secret.get_secret_value())
    session.add(row)
    session.commit()
    return _public(row)


@router.delete("/{key}", status_code=204)
def delete_credential(key: str, session: SessionDep, _token: AdminDep) -> Response:
    """Delete credentials (admin)."""
    session.delete(_find(session, key))
    session.commit()
    return Response(status_code=204)
