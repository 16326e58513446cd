"""The Alembic migrations produce exactly the models' schema, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fleetwire.cloud.db.engine import make_engine, upgrade
from fleetwire.cloud.db.tables import METADATA


def test_migrations_match_models(database_url):
    upgrade(database_url)
    upgrade(database_url)  # idempotent
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, METADATA)
            assert diff == []
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert set(METADATA.tables) <= tables
    assert "alembic_version" in tables
