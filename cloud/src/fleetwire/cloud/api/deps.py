"""FastAPI dependencies as ``Annotated`` aliases."""

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from fleetwire.cloud.api.problems import ProblemError
from fleetwire.cloud.auth import Role, lookup
from fleetwire.cloud.crypto import SecretBox
from fleetwire.cloud.db.tables import ApiToken
from fleetwire.cloud.settings import Settings
from fleetwire.cloud.tracing import child_traceparent

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer fwt_...`")


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session per request; routes commit what they change."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_secret_box(settings: Annotated[Settings, Depends(get_settings)]) -> SecretBox:
    """Encrypts image-credential secrets."""
    return SecretBox(settings.secret_key.get_secret_value())


def _nothing() -> None:
    return None


def get_notifier(request: Request) -> Callable[[], None]:
    """Wakes an in-process relay after a command is stored (a no-op otherwise)."""
    notify: Callable[[], None] = getattr(request.app.state, "notify_command", None) or _nothing
    return notify


NotifierDep = Annotated[Callable[[], None], Depends(get_notifier)]


def get_traceparent(traceparent: Annotated[str | None, Header()] = None) -> str:
    """The trace context for commands this request creates (a child of the caller's)."""
    return child_traceparent(traceparent)


TraceparentDep = Annotated[str, Depends(get_traceparent)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]


def current_token(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    """The token of the request; 401 without a valid one, 403 when a viewer writes."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(401, "a bearer token is required", headers=challenge)
    token = lookup(session, credentials.credentials)
    # End the read transaction now: on SQLite every transaction holds the write lock, and a
    # long answer (the SSE stream) must not keep it.
    session.commit()
    if token is None:
        raise ProblemError(401, "the bearer token is not valid", headers=challenge)
    if request.method not in ("GET", "HEAD", "OPTIONS") and not Role(token.role).allows(
        Role.OPERATOR
    ):
        raise ProblemError(403, f"role {token.role} may only read")
    return token


def require_admin(token: Annotated[ApiToken, Depends(current_token)]) -> ApiToken:
    """Admins only (tokens, image credentials)."""
    if not Role(token.role).allows(Role.ADMIN):
        raise ProblemError(403, f"role {token.role} may not do this: admin required")
    return token


TokenDep = Annotated[ApiToken, Depends(current_token)]
AdminDep = Annotated[ApiToken, Depends(require_admin)]
