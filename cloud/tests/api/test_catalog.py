"""Applications and releases."""

from cloud.tests.support import birth, register, seed_catalog, spec
from fleetwire.cloud.projector import BatchStore, Received
from fleetwire.protocol.codec import encode
from fleetwire.protocol.topics import presence_topic


def test_application_crud(api):
    c = api.client
    r = c.post(
        "/v1/applications", json={"name": "thermo", "description": "d"}, headers=api.operator
    )
    assert r.status_code == 201
    app_id = r.json()["id"]
    assert (
        c.post("/v1/applications", json={"name": "thermo"}, headers=api.operator).status_code == 409
    )
    assert c.get(f"/v1/applications/{app_id}", headers=api.viewer).json()["name"] == "thermo"
    assert c.get("/v1/applications/thermo", headers=api.viewer).json()["id"] == app_id
    r = c.patch("/v1/applications/thermo", json={"description": "new"}, headers=api.operator)
    assert r.json()["description"] == "new"
    assert c.get("/v1/applications/nope", headers=api.viewer).status_code == 404
    bad = c.post("/v1/applications", json={"name": "no/slash"}, headers=api.operator)
    assert bad.status_code == 422


def test_release_validation_messages(api):
    seed_catalog(api, versions=())
    bad = spec("not-semver")
    bad["containers"][0]["ports"] = ["99999"]
    r = api.client.post("/v1/applications/thermo/releases", json=bad, headers=api.operator)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"] == "the release spec is not valid"
    joined = " ".join(body["errors"])
    assert "semantic version" in joined
    assert "99999" in joined
    undeclared = spec(containers=[{"name": "a", "image": "img:1", "volumes": ["data:/d"]}])
    r = api.client.post("/v1/applications/thermo/releases", json=undeclared, headers=api.operator)
    assert r.status_code == 422
    assert "undeclared volume" in " ".join(r.json()["errors"])
    r = api.client.post(
        "/v1/applications/thermo/releases", json=spec(app="other"), headers=api.operator
    )
    assert r.status_code == 422
    assert "other" in r.json()["detail"]
    r = api.client.post("/v1/applications/nope/releases", json=spec(), headers=api.operator)
    assert r.status_code == 404


def test_release_version_unique_per_application(api):
    seed_catalog(api, versions=("1.0.0",))
    r = api.client.post("/v1/applications/thermo/releases", json=spec(), headers=api.operator)
    assert r.status_code == 409
    api.client.post("/v1/applications", json={"name": "other"}, headers=api.operator)
    r = api.client.post(
        "/v1/applications/other/releases", json=spec(app="other"), headers=api.operator
    )
    assert r.status_code == 201
    listed = api.client.get("/v1/applications/thermo/releases", headers=api.viewer).json()
    assert [x["version"] for x in listed] == ["1.0.0"]


def test_release_mutable_until_deployed(api, engine, settings):
    (rel1, rel2) = seed_catalog(api)
    r = api.client.put(f"/v1/releases/{rel1}", json=spec("1.0.1"), headers=api.operator)
    assert r.status_code == 200
    assert r.json()["version"] == "1.0.1"
    r = api.client.put(f"/v1/releases/{rel1}", json=spec("1.1.0"), headers=api.operator)
    assert r.status_code == 409  # version taken
    assert api.client.delete(f"/v1/releases/{rel2}", headers=api.operator).status_code == 204
    assert api.client.get(f"/v1/releases/{rel2}", headers=api.viewer).status_code == 404
    register(api, "dev-1")
    BatchStore(engine).process([Received(presence_topic("dev-1"), encode(birth("dev-1")))])
    r = api.client.post(
        "/v1/deployments", json={"release_id": rel1, "device_ids": ["dev-1"]}, headers=api.operator
    )
    assert r.status_code == 202, r.text
    assert api.client.get(f"/v1/releases/{rel1}", headers=api.viewer).json()["deployed"] is True
    r = api.client.put(f"/v1/releases/{rel1}", json=spec("1.0.1"), headers=api.operator)
    assert r.status_code == 409
    assert "immutable" in r.json()["detail"]
    assert api.client.delete(f"/v1/releases/{rel1}", headers=api.operator).status_code == 409
