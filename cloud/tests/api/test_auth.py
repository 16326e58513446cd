"""Bearer tokens and roles; every error is problem+json."""

from typing import Any

import pytest

from fleetwire.cloud.auth import hash_token


def _is_problem(r: Any, status: int) -> Any:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("https://fleetwire.dev/problems/")
    assert body["title"]
    return body


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}]
)
def test_unauthenticated_is_401(api, headers):
    body = _is_problem(api.client.get("/v1/applications", headers=headers), 401)
    assert "token" in body["detail"]


def test_401_has_a_bearer_challenge(api):
    r = api.client.get("/v1/devices")
    assert r.headers["www-authenticate"] == "Bearer"


def test_viewer_reads_but_never_writes(api):
    assert api.client.get("/v1/applications", headers=api.viewer).status_code == 200
    body = _is_problem(
        api.client.post("/v1/applications", json={"name": "x"}, headers=api.viewer), 403
    )
    assert "viewer" in body["detail"]
    _is_problem(api.client.post("/v1/devices", json={"id": "d1"}, headers=api.viewer), 403)
    _is_problem(api.client.post("/v1/deployments/x/actions/stop", headers=api.viewer), 403)


def test_operator_cannot_manage_tokens_or_credentials(api):
    _is_problem(
        api.client.post("/v1/tokens", json={"name": "x", "role": "viewer"}, headers=api.operator),
        403,
    )
    _is_problem(
        api.client.post(
            "/v1/image-credentials",
            json={"label": "l", "registry": "r", "username": "u", "secret": "s"},
            headers=api.operator,
        ),
        403,
    )


def test_admin_creates_tokens_stored_hashed(api, engine):
    r = api.client.post("/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=api.admin)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token.startswith("fwt_")
    new = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/devices", headers=new).status_code == 200
    listed = api.client.get("/v1/tokens", headers=api.admin).json()
    assert all("token" not in t and "token_hash" not in t for t in listed)
    with engine.connect() as conn:
        hashes = {row[0] for row in conn.exec_driver_sql("SELECT token_hash FROM api_token")}
    assert hash_token(token) in hashes
    assert token not in hashes
    token_id = r.json()["id"]
    assert api.client.delete(f"/v1/tokens/{token_id}", headers=api.admin).status_code == 204
    _is_problem(api.client.get("/v1/devices", headers=new), 401)


def test_unknown_route_and_bad_body_are_problems(api):
    _is_problem(api.client.get("/v1/nothing", headers=api.viewer), 404)
    body = _is_problem(
        api.client.post("/v1/applications", json={"nom": "x"}, headers=api.operator), 422
    )
    assert any("name" in e for e in body["errors"])


def test_openapi_has_examples(api):
    doc = api.client.get("/openapi.json").json()
    assert "/v1/deployments" in doc["paths"]
    assert "/v1/events/stream" in doc["paths"]
    text = str(doc)
    assert "rpi-0042" in text
    assert "registry.example.com" in text
