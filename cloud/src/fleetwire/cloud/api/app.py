"""The FastAPI application."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from fleetwire.cloud.api import problems
from fleetwire.cloud.api.routes import (
    applications,
    commands,
    deployments,
    devices,
    events,
    image_credentials,
    tokens,
)
from fleetwire.cloud.auth import ensure_bootstrap_admin
from fleetwire.cloud.db.engine import make_engine, upgrade
from fleetwire.cloud.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the API. Without ``engine``, the lifespan migrates the database and opens one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        if owned:
            upgrade(settings.database_url)
            app.state.engine = make_engine(settings.database_url)
        bootstrap = settings.bootstrap_admin_token
        created = ensure_bootstrap_admin(
            app.state.engine, bootstrap.get_secret_value() if bootstrap else None
        )
        if created is not None:
            # Printed once, on purpose: the operator needs it and it is stored only hashed.
            print(f"fleetwire: bootstrap admin token (shown once): {created}", flush=True)  # noqa: T201
        try:
            yield
        finally:
            if owned:
                app.state.engine.dispose()

    app = FastAPI(
        title="Fleetwire API",
        version="1",
        description="Deploy containerized applications to edge devices. Every error is an "
        "RFC 9457 problem document (application/problem+json).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    problems.install(app)
    v1 = APIRouter(prefix="/v1")
    for module in (applications, image_credentials, devices, deployments, commands, events, tokens):
        v1.include_router(module.router)
    app.include_router(v1)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
