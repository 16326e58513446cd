"""End to end: API -> relay -> broker -> agent -> Docker -> events -> projector -> API.

Parametrized over the embedded amqtt broker and Mosquitto. At every stop the read model must
match what the Docker Engine itself says (``docker ps`` by the agent's labels).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.stack import BrokerAccess, Stack, wait_until
from tests.factories import container_dict, release_dict
from tests.fixtures.amqtt import AmqttFactory
from tests.fixtures.docker import AppImages
from tests.fixtures.mosquitto import MosquittoBroker

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

DEPLOYMENT_LABEL = "io.fleetwire.deployment"
CONTAINER_LABEL = "io.fleetwire.container"
RELEASE_LABEL = "io.fleetwire.release"


@pytest.fixture(params=["amqtt", "mosquitto"])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, docker_client: docker.DockerClient
) -> Iterator[Stack]:
    device_id = f"e2e-{uuid.uuid4().hex[:8]}"
    if request.param == "amqtt":
        factory: AmqttFactory = request.getfixturevalue("amqtt_factory")
        amqtt = factory(device_ids=[device_id])
        cred = amqtt.devices[device_id]
        access = BrokerAccess(
            amqtt.url,
            (amqtt.cloud.username, amqtt.cloud.password),
            (cred.username, cred.password),
        )
    else:
        mosquitto: MosquittoBroker = request.getfixturevalue("mosquitto")
        access = BrokerAccess(mosquitto.url, None, None)
    stack = Stack(access, device_id, tmp_path)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        for dep in stack.deployments:
            for container in docker_client.containers.list(
                all=True, filters={"label": f"{DEPLOYMENT_LABEL}={dep}"}
            ):
                container.remove(force=True)
            for volume in docker_client.volumes.list(filters={"name": f"fw-{dep}"}):
                volume.remove(force=True)


def _release(version: str, image: str, *, health_check: bool = True) -> dict[str, Any]:
    """A one-container release; without ``health_check`` the image's own HEALTHCHECK decides."""
    checks: dict[str, Any] = {}
    if health_check:
        checks["health_check"] = {
            "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"],
            "interval_s": 1,
            "timeout_s": 1,
            "retries": 2,
        }
    web = container_dict("web", image, env={"RELEASE": version}, volumes=["data:/data"], **checks)
    return release_dict("e2e", version, containers=[web], volumes=[{"name": "data"}])


def _engine_view(client: docker.DockerClient, deployment_id: str) -> set[tuple[str, str, str, str]]:
    view = set()
    for c in client.containers.list(
        all=True, filters={"label": f"{DEPLOYMENT_LABEL}={deployment_id}"}
    ):
        health = (c.attrs.get("State", {}).get("Health") or {}).get("Status", "none")
        view.add((c.labels[CONTAINER_LABEL], c.labels[RELEASE_LABEL], c.status, health))
    return view


def _read_model_view(deployment: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (c["name"], c["release_version"], c["status"], c["health"])
        for c in deployment["containers"]
        if not c["gone"] and c["status"] != "missing"
    }


def _settle(
    stack: Stack,
    client: docker.DockerClient,
    command_id: str,
    deployment_id: str,
    *,
    status: str,
    state: str,
) -> dict[str, Any]:
    """Wait for the command's final status and the deployment's state, then for the read model
    to agree with the engine."""
    wait_until(
        lambda: stack.call("GET", f"/commands/{command_id}")["status"] == status,
        timeout=90,
        what=f"command {command_id} {status}",
    )

    def agreed() -> dict[str, Any] | None:
        deployment = stack.call("GET", f"/deployments/{deployment_id}")
        if deployment["state"] != state:
            return None
        engine = _engine_view(client, deployment_id)
        return deployment if _read_model_view(deployment) == engine else None

    settled: dict[str, Any] = wait_until(
        agreed, timeout=30, what=f"read model == docker ps in state {state}"
    )
    return settled


def test_deployment_lifecycle(
    stack: Stack, docker_client: docker.DockerClient, test_images: AppImages
) -> None:
    stack.call("POST", "/applications", {"name": "e2e"}, expect=201)
    for release in (
        _release("1.0.0", test_images.v1),
        _release("2.0.0", test_images.v2),
        # v3's image HEALTHCHECK always fails; a release health check would replace it (and
        # pass: the process serves /version fine), so 3.0.0 keeps the image's.
        _release("3.0.0", test_images.v3_unhealthy, health_check=False),
    ):
        stack.call("POST", "/applications/e2e/releases", release, expect=201)

    accepted = stack.call(
        "POST",
        "/deployments",
        {
            "application": "e2e",
            "version": "1.0.0",
            "device_ids": [stack.device_id],
            "health_timeout_s": 30,
        },
        expect=202,
    )["items"][0]
    dep = accepted["deployment_id"]
    stack.deployments.append(dep)

    d = _settle(
        stack, docker_client, accepted["command_id"], dep, status="succeeded", state="running"
    )
    assert _read_model_view(d) == {("web", "1.0.0", "running", "healthy")}
    assert d["current_version"] == "1.0.0"

    up = stack.call(
        "POST",
        f"/deployments/{dep}/actions/upgrade",
        {"version": "2.0.0", "health_timeout_s": 30},
        expect=202,
    )
    d = _settle(stack, docker_client, up["command_id"], dep, status="succeeded", state="running")
    assert _read_model_view(d) == {("web", "2.0.0", "running", "healthy")}
    assert d["current_version"] == "2.0.0"

    bad = stack.call(
        "POST",
        f"/deployments/{dep}/actions/upgrade",
        {"version": "3.0.0", "health_timeout_s": 8},
        expect=202,
    )
    d = _settle(stack, docker_client, bad["command_id"], dep, status="failed", state="rolled_back")
    assert _read_model_view(d) == {("web", "2.0.0", "running", "healthy")}
    assert d["current_version"] == "2.0.0"
    assert d["reason"]

    stop = stack.call("POST", f"/deployments/{dep}/actions/stop", {}, expect=202)
    d = _settle(stack, docker_client, stop["command_id"], dep, status="succeeded", state="stopped")
    assert {(n, s) for n, _, s, _ in _read_model_view(d)} == {("web", "exited")}

    start = stack.call("POST", f"/deployments/{dep}/actions/start", {}, expect=202)
    d = _settle(stack, docker_client, start["command_id"], dep, status="succeeded", state="running")
    assert _read_model_view(d) == {("web", "2.0.0", "running", "healthy")}

    delete = stack.call("POST", f"/deployments/{dep}/actions/delete", {}, expect=202)
    wait_until(
        lambda: stack.call("GET", f"/commands/{delete['command_id']}")["status"] == "succeeded",
        timeout=60,
        what="delete to succeed",
    )
    wait_until(lambda: not _engine_view(docker_client, dep), timeout=30, what="containers gone")
    d = wait_until(
        lambda: (x := stack.call("GET", f"/deployments/{dep}"))["state"] == "deleted" and x,
        timeout=30,
        what="deployment deleted in the read model",
    )
    assert _read_model_view(d) == set()
