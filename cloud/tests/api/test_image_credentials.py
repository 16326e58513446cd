"""Image credentials: the secret is write-only and never stored or logged in clear."""

import logging

from sqlalchemy import text

from cloud.tests.support import birth, feed, register, spec
from fleetwire.cloud.relay import Relay
from fleetwire.protocol.codec import encode

SECRET = "hunter2-Sup3r-S3cret-value"
CREDS = {"label": "acme", "registry": "registry.example.com", "username": "bot", "secret": SECRET}


def test_secret_never_leaves(api, engine, settings, caplog):
    caplog.set_level(logging.DEBUG)
    r = api.client.post("/v1/image-credentials", json=CREDS, headers=api.admin)
    assert r.status_code == 201
    assert SECRET not in r.text
    assert set(r.json()) == {"id", "label", "registry", "username", "created_at"}
    assert (
        api.client.post("/v1/image-credentials", json=CREDS, headers=api.admin).status_code == 409
    )
    for url in ("/v1/image-credentials", "/v1/image-credentials/acme"):
        got = api.client.get(url, headers=api.viewer)
        assert got.status_code == 200
        assert SECRET not in got.text
    bad = api.client.post("/v1/image-credentials", json={**CREDS, "label": ""}, headers=api.admin)
    assert bad.status_code == 422
    assert SECRET not in bad.text

    api.client.post("/v1/applications", json={"name": "thermo"}, headers=api.operator)
    body = spec(
        containers=[{"name": "web", "image": "registry.example.com/t:1", "credentials": "acme"}]
    )
    rel = api.client.post(
        "/v1/applications/thermo/releases", json=body, headers=api.operator
    ).json()
    register(api, "dev-1")
    feed(engine, settings, birth("dev-1"))
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": rel["id"], "device_ids": ["dev-1"]},
        headers=api.operator,
    )
    assert r.status_code == 202
    assert SECRET not in r.text
    for url in (
        "/v1/deployments",
        f"/v1/commands/{r.json()['items'][0]['command_id']}",
        "/v1/events",
    ):
        assert SECRET not in api.client.get(url, headers=api.viewer).text

    # Nothing in any table holds the secret in clear (the credential row holds ciphertext).
    with engine.connect() as conn:
        for table in (
            "image_credential",
            "outbox",
            "command",
            "deployment",
            "release",
            "event",
            "device",
        ):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert SECRET not in str(row), table
        refs = conn.execute(text("SELECT credential_refs FROM outbox")).scalar()
    assert "acme" in str(refs)

    # The relay puts it into the command at publish time only.
    relay = Relay(engine, settings)
    (pending,) = relay.due()
    message = relay.message(pending)
    assert SECRET in encode(message).decode()
    assert SECRET not in repr(message)
    assert SECRET not in caplog.text


def test_rotate_and_delete(api):
    api.client.post("/v1/image-credentials", json=CREDS, headers=api.admin)
    r = api.client.patch("/v1/image-credentials/acme", json={"secret": "new"}, headers=api.admin)
    assert r.status_code == 200
    assert "new" not in r.text.replace("username", "")
    assert api.client.delete("/v1/image-credentials/acme", headers=api.admin).status_code == 204
    assert api.client.get("/v1/image-credentials/acme", headers=api.viewer).status_code == 404


def test_unknown_credentials_label_is_refused_at_deploy(api, engine, settings):
    api.client.post("/v1/applications", json={"name": "thermo"}, headers=api.operator)
    body = spec(containers=[{"name": "web", "image": "r/t:1", "credentials": "missing"}])
    rel = api.client.post(
        "/v1/applications/thermo/releases", json=body, headers=api.operator
    ).json()
    register(api, "dev-1")
    feed(engine, settings, birth("dev-1"))
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": rel["id"], "device_ids": ["dev-1"]},
        headers=api.operator,
    )
    assert r.status_code == 422
    assert "missing" in r.json()["detail"]


def test_a_command_whose_credential_was_deleted_fails_instead_of_going_out_without_it(
    api, engine, settings
):
    assert api.client.post("/v1/image-credentials", json=CREDS, headers=api.admin).status_code
    api.client.post("/v1/applications", json={"name": "thermo"}, headers=api.operator)
    body = spec(
        containers=[{"name": "web", "image": "registry.example.com/t:1", "credentials": "acme"}]
    )
    rel = api.client.post(
        "/v1/applications/thermo/releases", json=body, headers=api.operator
    ).json()
    register(api, "dev-1")
    feed(engine, settings, birth("dev-1"))
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": rel["id"], "device_ids": ["dev-1"]},
        headers=api.operator,
    )
    assert r.status_code == 202, r.text
    command_id = r.json()["items"][0]["command_id"]
    assert api.client.delete("/v1/image-credentials/acme", headers=api.admin).status_code == 204

    # The relay is not connected: a command it tried to publish would fail (BrokerUnavailable)
    # and be retried; this one is closed before any publish is attempted.
    relay = Relay(engine, settings)
    acked, failed = relay.publish(relay.due())
    assert (acked, failed) == ([], [])
    command = api.client.get(f"/v1/commands/{command_id}", headers=api.viewer).json()
    assert command["status"] == "failed"
    assert command["detail"] == "image credential acme was deleted before the command was sent"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sent_at FROM outbox")).scalar() is not None
    assert relay.due() == []
