"""Alembic environment: runs on the connection ``fleetwire.cloud.db.engine.upgrade`` passes in,
or on ``sqlalchemy.url`` when run from the ``alembic`` command line."""

from alembic import context
from sqlalchemy import Connection

from fleetwire.cloud.db.engine import make_engine
from fleetwire.cloud.db.tables import METADATA

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


run_migrations_online()
