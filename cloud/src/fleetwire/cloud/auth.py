"""API tokens: high-entropy bearer tokens, stored as SHA-256, with roles."""

import hashlib
import secrets
from enum import StrEnum

from sqlalchemy import Engine
from sqlmodel import Session, select

from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.db.tables import ApiToken
from fleetwire.protocol.ids import new_id

TOKEN_PREFIX = "fwt_"


class Role(StrEnum):
    """What a token may do: viewers read, operators act on devices, admins manage everything."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of privilege."""
        return [Role.VIEWER, Role.OPERATOR, Role.ADMIN].index(self)

    def allows(self, needed: "Role") -> bool:
        """Tell whether this role includes ``needed``."""
        return self.rank >= needed.rank


def hash_token(token: str) -> str:
    """The stored form of a token. SHA-256 suffices: tokens carry 256 bits of randomness."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    """A new random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(session: Session, role: Role, name: str, token: str | None = None) -> str:
    """Store a token (a new random one unless given) and return it in clear, once."""
    token = token or generate_token()
    session.add(ApiToken(id=new_id(), name=name, role=role.value, token_hash=hash_token(token)))
    return token


def lookup(session: Session, token: str) -> ApiToken | None:
    """The live token row for a presented bearer token, if any."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    return None if row is None or row.revoked else row


def ensure_bootstrap_admin(engine: Engine, token: str | None) -> str | None:
    """Make sure an admin token exists.

    With ``token`` (from settings) that token is stored if missing. Without one, a random admin
    token is created when no admin token exists at all, and returned so it can be printed once.
    """
    with session_scope(engine) as session:
        if token is not None:
            if lookup(session, token) is None:
                create_token(session, Role.ADMIN, "bootstrap", token)
            return None
        exists = session.exec(select(ApiToken).where(ApiToken.role == Role.ADMIN.value)).first()
        if exists is not None:
            return None
        return create_token(session, Role.ADMIN, "bootstrap")
