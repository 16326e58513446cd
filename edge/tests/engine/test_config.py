"""What a created container and its networks look like in the engine; supersession."""

from pathlib import Path

import docker
import pytest

from edge.tests.engine.support import (
    APPLICATION,
    DEVICE,
    HEALTH,
    ListSink,
    ReconcilerFactory,
    desired,
    release,
)
from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.protocol.events import CommandFailed, CommandProgress, CommandSucceeded
from fleetwire.protocol.release import (
    ContainerSpec,
    NetworkSpec,
    ReleaseSpec,
    RestartPolicy,
    VolumeSpec,
)
from tests.fixtures.docker import app_image

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def test_container_networks_and_volumes_are_created_as_specified(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
    tmp_path: Path,
) -> None:
    rel = ReleaseSpec(
        application=APPLICATION,
        version="1.2.3",
        containers=[
            ContainerSpec(
                name="web",
                image=app_image("v1"),
                command=["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"],
                env={"GREETING": "hello"},
                ports=["127.0.0.1:8080"],  # ip, no host port: any free one
                binds=[f"{tmp_path}:/host:ro"],
                volumes=["data:/data"],
                networks=["front", "back"],
                restart_policy=RestartPolicy.ON_FAILURE,
                health_check=HEALTH,
                init=True,
                stop_timeout_s=3,
            )
        ],
        volumes=[VolumeSpec(name="data", options={})],
        networks=[
            NetworkSpec(name="front"),
            NetworkSpec(
                name="back", internal=True, options={"com.docker.network.driver.mtu": "1400"}
            ),
        ],
    )
    d = desired(deployment_id, rel)
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(d.command_id or ""), CommandSucceeded)
    (c,) = docker_client.containers.list(filters={"label": [f"{lb.DEPLOYMENT}={deployment_id}"]})
    attrs = c.attrs
    config, host = attrs["Config"], attrs["HostConfig"]
    assert "GREETING=hello" in config["Env"]
    assert config["Cmd"][0] == "sh"
    assert config["StopTimeout"] == 3
    assert config["Healthcheck"]["Interval"] == 500_000_000
    assert config["Healthcheck"]["Retries"] == 2
    assert host["Init"] is True
    assert host["RestartPolicy"]["Name"] == "on-failure"
    assert host["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    assert f"{tmp_path}:/host:ro" in host["Binds"]
    assert f"{lb.volume_name(DEVICE, deployment_id, 'data')}:/data" in host["Binds"]
    nets = attrs["NetworkSettings"]["Networks"]
    front, back = (lb.network_name(DEVICE, deployment_id, n) for n in ("front", "back"))
    assert set(nets) == {front, back}
    assert "web" in (nets[back]["Aliases"] or [])
    back_net = docker_client.networks.get(back)
    assert back_net.attrs["Internal"] is True
    assert back_net.attrs["Options"]["com.docker.network.driver.mtu"] == "1400"
    assert back_net.attrs["Labels"][lb.DEPLOYMENT] == deployment_id
    volume = docker_client.volumes.get(lb.volume_name(DEVICE, deployment_id, "data"))
    assert volume.attrs["Labels"][lb.MANAGED] == "true"


def test_a_newer_target_supersedes_the_running_one(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    slow = desired(deployment_id, release(tag="v3"), health_timeout_s=60)
    ex = make_reconciler()
    store.put(slow)
    ex.submit(deployment_id)
    sink.wait_for(
        lambda e: (
            isinstance(e, CommandProgress)
            and e.correlationid == slow.command_id
            and e.data.step == "wait_healthy"
        ),
        timeout=20,
    )
    fast = desired(deployment_id, release(tag="v1"))
    store.put(fast)
    ex.submit(deployment_id)
    first = sink.outcome(slow.command_id or "", timeout=20)
    assert isinstance(first, CommandFailed)
    assert first.data.error.code == "superseded"
    assert isinstance(sink.outcome(fast.command_id or ""), CommandSucceeded)
    (c,) = docker_client.containers.list(
        all=True, filters={"label": [f"{lb.DEPLOYMENT}={deployment_id}"]}
    )
    assert c.image is not None
    assert c.image.tags == [app_image("v1")]
