"""Deployments, actions and command status."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from cloud.tests.support import birth, dep_state, feed, register, seed_catalog, spec
from fleetwire.protocol.envelope import FIRST_SEQ, utcnow


@pytest.fixture
def ready(api, engine, settings):
    """thermo 1.0.0 and 1.1.0; devices dev-1 and dev-2 registered and announced."""
    releases = seed_catalog(api)
    for d in ("dev-1", "dev-2"):
        register(api, d)
    feed(engine, settings, birth("dev-1"), birth("dev-2"))
    return releases


def _deploy(api: Any, release_id: str, devices: tuple[str, ...] = ("dev-1",)) -> Any:
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": release_id, "device_ids": list(devices)},
        headers=api.operator,
    )
    assert r.status_code == 202, r.text
    return r.json()["items"]


def test_deploy_creates_one_deployment_and_command_per_device(api, engine, ready):
    items = _deploy(api, ready[0], ("dev-1", "dev-2"))
    assert {i["device_id"] for i in items} == {"dev-1", "dev-2"}
    cmd = api.client.get(items[0]["status_url"], headers=api.viewer).json()
    assert cmd["status"] == "pending"
    assert cmd["action"] == "deploy"
    expires = cmd["expires"]
    assert expires > (utcnow() + timedelta(days=6)).isoformat()
    dep = api.client.get(f"/v1/deployments/{items[0]['deployment_id']}", headers=api.viewer).json()
    assert dep["desired_version"] == "1.0.0"
    assert dep["current_version"] is None
    assert dep["state"] == "pending"
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar()
    assert n == 2
    listed = api.client.get("/v1/deployments?device_id=dev-2", headers=api.viewer).json()
    assert [d["id"] for d in listed] == [items[1]["deployment_id"]]


def test_deploy_by_application_and_version(api, ready):
    r = api.client.post(
        "/v1/deployments",
        json={"application": "thermo", "version": "1.1.0", "device_ids": ["dev-1"]},
        headers=api.operator,
    )
    assert r.status_code == 202


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"release_id": "nope", "device_ids": ["dev-1"]}, "does not exist"),
        ({"application": "thermo", "version": "9.9.9", "device_ids": ["dev-1"]}, "no release"),
        ({"application": "nope", "version": "1.0.0", "device_ids": ["dev-1"]}, "does not exist"),
        ({"device_ids": ["dev-1"]}, "release_id"),
        ({"application": "thermo", "version": "1.0.0", "device_ids": []}, "device_ids"),
    ],
)
def test_deploy_bad_release_is_422(api, ready, body, needle):
    r = api.client.post("/v1/deployments", json=body, headers=api.operator)
    assert r.status_code == 422
    assert needle in r.text


def test_deploy_refuses_unsupported_model_and_unannounced_type(api, engine, settings):
    api.client.post("/v1/applications", json={"name": "thermo"}, headers=api.operator)
    rel = api.client.post(
        "/v1/applications/thermo/releases", json=spec(system_models=["rpi4"]), headers=api.operator
    ).json()["id"]
    register(api, "pc", system_model="x86")
    register(api, "old")
    register(api, "silent")
    feed(
        engine,
        settings,
        birth("pc", system_model="x86"),
        birth("old", types=["io.fleetwire.command.start.v1"]),
    )
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": rel, "device_ids": ["pc", "old", "silent", "ghost"]},
        headers=api.operator,
    )
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert any("pc" in e and "system model 'x86'" in e for e in errors)
    assert any(
        "old" in e and "did not announce io.fleetwire.command.deploy.v1" in e for e in errors
    )
    assert any("silent" in e and "no birth message" in e for e in errors)
    assert any("ghost" in e and "not registered" in e for e in errors)
    assert api.client.get("/v1/deployments", headers=api.viewer).json() == []


def test_actions_follow_the_state(api, engine, settings, ready):
    (item,) = _deploy(api, ready[0])
    dep_id = item["deployment_id"]
    url = f"/v1/deployments/{dep_id}/actions"
    r = api.client.post(f"{url}/start", headers=api.operator)
    assert r.status_code == 409
    assert "pending" in r.json()["detail"]
    feed(engine, settings, dep_state("dev-1", FIRST_SEQ, dep_id, "running"))
    assert api.client.post(f"{url}/start", headers=api.operator).status_code == 409
    r = api.client.post(f"{url}/stop", headers=api.operator)
    assert r.status_code == 202
    cmd = api.client.get(f"/v1/commands/{r.json()['command_id']}", headers=api.viewer).json()
    assert cmd["action"] == "stop"
    assert cmd["type"] == "io.fleetwire.command.stop.v1"
    feed(engine, settings, dep_state("dev-1", FIRST_SEQ + 1, dep_id, "stopped"))
    assert api.client.post(f"{url}/start", headers=api.operator).status_code == 202
    assert api.client.post(f"{url}/bogus", headers=api.operator).status_code == 422


def test_upgrade_needs_a_release_of_the_same_application(api, engine, settings, ready):
    (item,) = _deploy(api, ready[0])
    dep_id = item["deployment_id"]
    feed(engine, settings, dep_state("dev-1", FIRST_SEQ, dep_id, "running"))
    url = f"/v1/deployments/{dep_id}/actions/upgrade"
    assert api.client.post(url, headers=api.operator).status_code == 422
    assert api.client.post(url, json={"version": "1.0.0"}, headers=api.operator).status_code == 409
    api.client.post("/v1/applications", json={"name": "other"}, headers=api.operator)
    other = api.client.post(
        "/v1/applications/other/releases", json=spec(app="other"), headers=api.operator
    ).json()["id"]
    r = api.client.post(url, json={"release_id": other}, headers=api.operator)
    assert r.status_code == 409
    assert "same application" in r.json()["detail"]
    r = api.client.post(url, json={"version": "1.1.0"}, headers=api.operator)
    assert r.status_code == 202, r.text
    dep = api.client.get(f"/v1/deployments/{dep_id}", headers=api.viewer).json()
    assert dep["desired_version"] == "1.1.0"
    assert dep["current_version"] == "1.0.0"
    assert api.client.get(f"/v1/releases/{ready[1]}", headers=api.viewer).json()["deployed"]


def test_delete_then_nothing_more(api, engine, settings, ready):
    (item,) = _deploy(api, ready[0])
    dep_id = item["deployment_id"]
    url = f"/v1/deployments/{dep_id}/actions"
    r = api.client.post(f"{url}/delete", json={"purge_volumes": True}, headers=api.operator)
    assert r.status_code == 202
    r = api.client.post(f"{url}/redeploy", headers=api.operator)
    assert r.status_code == 409
    assert "deleted" in r.json()["detail"]


def test_action_type_must_be_announced(api, engine, settings, ready):
    (item,) = _deploy(api, ready[0])
    dep_id = item["deployment_id"]
    feed(
        engine,
        settings,
        dep_state("dev-1", FIRST_SEQ, dep_id, "running"),
        birth("dev-1", types=["io.fleetwire.command.deploy.v1"]),
    )
    r = api.client.post(f"/v1/deployments/{dep_id}/actions/stop", headers=api.operator)
    assert r.status_code == 422
    assert "io.fleetwire.command.stop.v1" in r.json()["detail"]


def test_unknown_deployment_and_command(api):
    assert api.client.get("/v1/deployments/nope", headers=api.viewer).status_code == 404
    assert (
        api.client.post("/v1/deployments/nope/actions/stop", headers=api.operator).status_code
        == 404
    )
    assert api.client.get("/v1/commands/nope", headers=api.viewer).status_code == 404


def test_list_commands(api, ready):
    items = _deploy(api, ready[0], ("dev-1", "dev-2"))
    listed = api.client.get("/v1/commands?device_id=dev-2", headers=api.viewer).json()
    assert [c["id"] for c in listed] == [items[1]["command_id"]]
    pending = api.client.get("/v1/commands?status=pending", headers=api.viewer).json()
    assert len(pending) == 2
    by_dep = api.client.get(
        "/v1/commands", params={"deployment_id": items[0]["deployment_id"]}, headers=api.viewer
    ).json()
    assert [c["action"] for c in by_dep] == ["deploy"]


def test_commands_carry_the_callers_trace(api, engine, ready):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": ready[0], "device_ids": ["dev-1"]},
        headers={**api.operator, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert r.status_code == 202
    with engine.connect() as conn:
        (payload,) = conn.execute(text("SELECT payload FROM outbox")).scalars().all()
    if isinstance(payload, str):
        payload = json.loads(payload)
    assert payload["traceparent"].startswith(f"00-{trace}-")
    assert payload["traceparent"] != f"00-{trace}-00f067aa0ba902b7-01"  # a child span
