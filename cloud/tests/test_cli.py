"""``fleetwire db upgrade`` and ``fleetwire token create``."""

from sqlalchemy import text
from typer.testing import CliRunner

from fleetwire.cloud.auth import hash_token
from fleetwire.cloud.cli import app
from fleetwire.cloud.db.engine import make_engine


def test_db_upgrade_and_token_create(database_url):
    runner = CliRunner()
    r = runner.invoke(app, ["db", "upgrade", "--database", database_url])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["token", "create", "--role", "operator", "--database", database_url])
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            role = conn.execute(
                text("SELECT role FROM api_token WHERE token_hash = :h"), {"h": hash_token(token)}
            ).scalar()
    finally:
        engine.dispose()
    assert role == "operator"


def test_serve_help_lists_the_components():
    r = CliRunner().invoke(app, ["serve", "--help"])
    assert r.exit_code == 0
    for flag in ("--broker", "--database", "--no-api", "--no-relay", "--no-projector", "--port"):
        assert flag in r.output
