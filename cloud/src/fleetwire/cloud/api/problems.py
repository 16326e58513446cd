"""RFC 9457 problem details (``application/problem+json``) for every error answer."""

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleetwire.cloud.errors import CloudError, Unprocessable

PROBLEM_TYPE_BASE = "https://fleetwire.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_TYPE_BASE + "conflict"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str | None = Field(default=None, examples=["release 1.0.0 is deployed: immutable"])
    instance: str | None = Field(default=None, examples=["/v1/releases/0191..."])
    errors: list[str] = Field(default_factory=list, description="Individual problems, if many.")


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    422: "unprocessable",
    503: "unavailable",
}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable request",
    503: "Service unavailable",
}


class ProblemError(HTTPException):
    """An HTTPException that carries a list of individual errors (raised in routes only)."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.errors = errors or []


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    errors: list[str] | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = Problem(
        type=PROBLEM_TYPE_BASE + _SLUGS.get(status, str(status)),
        title=title or _TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors or [],
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "<root>"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        errors = exc.errors if isinstance(exc, ProblemError) else None
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, detail, errors=errors, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [f"{_loc(e)}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return problem_response(request, 422, "the request is not valid", errors=errors)

    async def cloud_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CloudError)
        errors = exc.errors if isinstance(exc, Unprocessable) else None
        return problem_response(request, exc.status, str(exc), title=exc.title, errors=errors)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(CloudError, cloud_error)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": _TITLES[status], "content": {MEDIA_TYPE: {}}}
    for status in (401, 403, 404, 409, 422)
}
"""OpenAPI ``responses=`` for routes."""


def commit_or_conflict(session: Session, detail: str) -> None:
    """Commit; a uniqueness violation becomes a 409 problem (after a rollback)."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ProblemError(409, detail) from None
