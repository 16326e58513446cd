"""Fixtures of the cloud tests: every database test runs on SQLite and on PostgreSQL.

Uses the shared fixtures of tests/fixtures (``postgres_url``, ``mosquitto``,
``mosquitto_factory``) registered by the root conftest.py.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud.tests.support import AsgiClient, make_settings
from fleetwire.cloud.api.app import create_app
from fleetwire.cloud.auth import Role, create_token
from fleetwire.cloud.db.engine import make_engine, session_scope, upgrade
from fleetwire.cloud.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleetwire.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Test settings on ``database_url``."""
    return make_settings(database_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """A migrated database."""
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@dataclass
class Api:
    """A test client and one token per role."""

    client: AsgiClient
    admin: dict[str, str]
    operator: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Api]:
    """The API on ``engine`` with admin, operator and viewer tokens (as headers)."""
    with session_scope(engine) as session:
        tokens = {role: create_token(session, role, role.value) for role in Role}
    client = AsgiClient(create_app(settings, engine))
    headers = [
        {"Authorization": f"Bearer {tokens[r]}"} for r in (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
    ]
    try:
        yield Api(client, *headers)
    finally:
        client.close()
