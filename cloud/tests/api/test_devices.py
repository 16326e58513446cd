"""Devices: registration and presence."""

from cloud.tests.support import birth, feed, register


def test_register_and_read(api, engine, settings):
    r = api.client.post(
        "/v1/devices",
        json={"id": "rpi-0042", "system_model": "rpi4", "tags": ["lyon"]},
        headers=api.operator,
    )
    assert r.status_code == 201
    body = r.json()
    assert body["online"] is False
    assert set(body) >= {"id", "system_model", "tags", "last_seen", "agent_version"}
    assert not any("password" in k or "secret" in k for k in body)
    assert (
        api.client.post("/v1/devices", json={"id": "rpi-0042"}, headers=api.operator).status_code
        == 409
    )
    feed(engine, settings, birth("rpi-0042"))
    got = api.client.get("/v1/devices/rpi-0042", headers=api.viewer).json()
    assert got["online"] is True
    assert got["agent_version"] == "0.1.0"
    assert got["last_seen"] is not None
    assert "io.fleetwire.command.deploy.v1" in got["protocol_types"]
    assert [d["id"] for d in api.client.get("/v1/devices?tag=lyon", headers=api.viewer).json()] == [
        "rpi-0042"
    ]
    assert api.client.get("/v1/devices?tag=paris", headers=api.viewer).json() == []
    r = api.client.patch("/v1/devices/rpi-0042", json={"tags": ["paris"]}, headers=api.operator)
    assert r.json()["tags"] == ["paris"]
    assert api.client.get("/v1/devices/rpi-0042/deployments", headers=api.viewer).json() == []


def test_device_id_follows_protocol_rules(api):
    for bad in ["has/slash", "+", "#", "-leading", "x" * 65, ""]:
        r = api.client.post("/v1/devices", json={"id": bad}, headers=api.operator)
        assert r.status_code == 422, bad
        assert r.headers["content-type"].startswith("application/problem+json")


def test_unknown_device_is_404(api):
    r = api.client.get("/v1/devices/nope", headers=api.viewer)
    assert r.status_code == 404
    assert r.json()["detail"] == "device 'nope' does not exist"
    assert api.client.get("/v1/devices/nope/deployments", headers=api.viewer).status_code == 404


def test_device_seen_before_registration_is_adopted(api, engine, settings):
    feed(engine, settings, birth("early"))
    listed = api.client.get("/v1/devices", headers=api.viewer).json()
    assert [(d["id"], d["registered"]) for d in listed] == [("early", False)]
    register(api, "early")
    assert api.client.get("/v1/devices/early", headers=api.viewer).json()["registered"] is True
