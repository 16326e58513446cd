"""Errors from the cloud's own tree become problem+json answers, with their details."""

from fastapi import FastAPI

from cloud.tests.support import AsgiClient
from fleetwire.cloud.api import problems
from fleetwire.cloud.errors import Conflict, Unprocessable


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/unprocessable")
    def unprocessable() -> None:
        raise Unprocessable("the release is not valid", errors=["containers.web: no image"])

    @app.get("/conflict")
    def conflict() -> None:
        raise Conflict("already there")

    return app


def test_an_unprocessable_error_that_escapes_a_route_keeps_its_list_of_problems() -> None:
    client = AsgiClient(_app())
    try:
        answer = client.get("/unprocessable")
    finally:
        client.close()
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(problems.MEDIA_TYPE)
    body = answer.json()
    assert body["detail"] == "the release is not valid"
    assert body["errors"] == ["containers.web: no image"]


def test_other_cloud_errors_carry_their_status_and_detail() -> None:
    client = AsgiClient(_app())
    try:
        answer = client.get("/conflict")
    finally:
        client.close()
    assert answer.status_code == 409
    assert answer.json()["detail"] == "already there"
