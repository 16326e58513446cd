"""``/v1/applications`` and their ``releases``."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import ValidationError
from sqlmodel import Session, select

from fleetwire.cloud.api.deps import SessionDep, TokenDep
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES, ProblemError, commit_or_conflict
from fleetwire.cloud.api.schemas import (
    RELEASE_SPEC_EXAMPLE,
    ApplicationCreate,
    ApplicationPublic,
    ApplicationUpdate,
    ReleasePublic,
)
from fleetwire.cloud.db.tables import Application, Release
from fleetwire.protocol.ids import new_id
from fleetwire.protocol.release import ReleaseSpec

router = APIRouter(tags=["catalog"], responses=PROBLEM_RESPONSES)

SpecBody = Annotated[dict[str, Any], Body(examples=[RELEASE_SPEC_EXAMPLE])]


def _app_public(app: Application) -> ApplicationPublic:
    return ApplicationPublic.model_validate(app, from_attributes=True)


def release_public(release: Release, application: Application) -> ReleasePublic:
    """The public form of a release."""
    return ReleasePublic(
        id=release.id,
        application_id=release.application_id,
        application=application.name,
        version=release.version,
        deployed=release.deployed,
        spec=release.spec,
        created_at=release.created_at,
    )


def find_application(session: Session, key: str) -> Application:
    """An application by id or name, or 404."""
    app = (
        session.get(Application, key)
        or session.exec(select(Application).where(Application.name == key)).first()
    )
    if app is None:
        raise ProblemError(404, f"application {key!r} does not exist")
    return app


def validate_spec(raw: dict[str, Any], application: Application) -> ReleaseSpec:
    """Validate a release spec with the protocol's ReleaseSpec; 422 with every message."""
    try:
        spec = ReleaseSpec.model_validate(raw)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ProblemError(422, "the release spec is not valid", errors) from None
    if spec.application != application.name:
        raise ProblemError(
            422,
            f"the spec names application {spec.application!r}, not {application.name!r}",
        )
    return spec


@router.post("/applications", status_code=201)
def create_application(
    body: ApplicationCreate, session: SessionDep, _token: TokenDep
) -> ApplicationPublic:
    """Create an application."""
    app = Application(id=new_id(), name=body.name, description=body.description)
    session.add(app)
    commit_or_conflict(session, f"application {body.name!r} already exists")
    return _app_public(app)


@router.get("/applications")
def list_applications(session: SessionDep, _token: TokenDep) -> list[ApplicationPublic]:
    """Every application, by name."""
    return [_app_public(a) for a in session.exec(select(Application).order_by(Application.name))]


@router.get("/applications/{app}")
def get_application(app: str, session: SessionDep, _token: TokenDep) -> ApplicationPublic:
    """An application by id or name."""
    return _app_public(find_application(session, app))


@router.patch("/applications/{app}")
def update_application(
    app: str, body: ApplicationUpdate, session: SessionDep, _token: TokenDep
) -> ApplicationPublic:
    """Change an application's description."""
    row = find_application(session, app)
    row.description = body.description
    session.add(row)
    session.commit()
    return _app_public(row)


@router.post("/applications/{app}/releases", status_code=201)
def create_release(
    app: str, spec: SpecBody, session: SessionDep, _token: TokenDep
) -> ReleasePublic:
    """Publish a release; the body is a release spec (see the protocol's ReleaseSpec)."""
    application = find_application(session, app)
    valid = validate_spec(spec, application)
    release = Release(
        id=new_id(),
        application_id=application.id,
        version=valid.version,
        spec=valid.model_dump(mode="json"),
    )
    session.add(release)
    commit_or_conflict(session, f"{application.name} already has a release {valid.version}")
    return release_public(release, application)


@router.get("/applications/{app}/releases")
def list_releases(app: str, session: SessionDep, _token: TokenDep) -> list[ReleasePublic]:
    """The releases of an application, oldest first."""
    application = find_application(session, app)
    rows = session.exec(
        select(Release).where(Release.application_id == application.id).order_by(Release.id)
    )
    return [release_public(r, application) for r in rows]


def find_release(session: Session, release_id: str) -> tuple[Release, Application]:
    """A release and its application, or 404."""
    release = session.get(Release, release_id)
    if release is None:
        raise ProblemError(404, f"release {release_id!r} does not exist")
    application = session.get(Application, release.application_id)
    assert application is not None
    return release, application


@router.get("/releases/{release_id}")
def get_release(release_id: str, session: SessionDep, _token: TokenDep) -> ReleasePublic:
    """A release."""
    return release_public(*find_release(session, release_id))


@router.put("/releases/{release_id}")
def replace_release(
    release_id: str, spec: SpecBody, session: SessionDep, _token: TokenDep
) -> ReleasePublic:
    """Replace the spec of a release that no deployment uses yet (409 once deployed)."""
    release, application = find_release(session, release_id)
    if release.deployed:
        raise ProblemError(409, f"release {release.version} is deployed and so immutable")
    valid = validate_spec(spec, application)
    release.version = valid.version
    release.spec = valid.model_dump(mode="json")
    session.add(release)
    commit_or_conflict(session, f"{application.name} already has a release {valid.version}")
    return release_public(release, application)


@router.delete("/releases/{release_id}", status_code=204)
def delete_release(release_id: str, session: SessionDep, _token: TokenDep) -> Response:
    """Delete a release that no deployment uses (409 once deployed)."""
    release, _ = find_release(session, release_id)
    if release.deployed:
        raise ProblemError(409, f"release {release.version} is deployed and so immutable")
    session.delete(release)
    session.commit()
    return Response(status_code=204)
