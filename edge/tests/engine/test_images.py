"""Image pulls with credentials (never leaked) and offline image packages."""

import logging
from pathlib import Path

import docker
import pytest
from pydantic import SecretStr

from edge.tests.engine.support import REPO, ListSink, ReconcilerFactory, desired, release
from fleetwire.edge.engine.errors import ImageImportFailed, PullFailed
from fleetwire.edge.engine.images import import_image, normalize_ref, pull_image
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.events import CommandFailed, CommandSucceeded, DeploymentState
from tests.fixtures.docker import AppImages

SECRET = "s3cr3t-Pa55word-never-shown"
UNREACHABLE = "127.0.0.1:9/fleetwire/private-app:v1"  # discard port: connection refused


def _credential() -> RegistryCredential:
    return RegistryCredential(
        ref="private", registry="127.0.0.1:9", username="robot", password=SecretStr(SECRET)
    )


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("busybox", "busybox:latest"),
        ("docker.io/library/busybox:1.36", "busybox:1.36"),
        ("ghcr.io/acme/app:v1", "ghcr.io/acme/app:v1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("acme/app@sha256:" + "a" * 64, "acme/app@sha256:" + "a" * 64),
    ],
)
def test_normalize_ref_matches_the_engines_local_names(ref: str, key: str) -> None:
    assert normalize_ref(ref) == key


@pytest.mark.docker
def test_failed_pull_with_credentials_never_shows_the_secret(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PullFailed) as info:
        pull_image(docker_client, UNREACHABLE, _credential())
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert SECRET not in repr(info.value)

    d = desired(deployment_id, release(image=UNREACHABLE, credentials="private"))
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id, [_credential()])
    outcome = sink.outcome(d.command_id or "")
    assert isinstance(outcome, CommandFailed)
    assert outcome.data.error.code == "pull_failed"
    assert ex.state_of(deployment_id) is DeploymentState.ERROR
    for event in sink.snapshot():
        assert SECRET not in event.model_dump_json()
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            assert SECRET not in str(record.exc_info[1])
    assert SECRET not in caplog.text


@pytest.mark.docker
def test_offline_image_package_is_imported(
    docker_client: docker.DockerClient,
    test_images: AppImages,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
    tmp_path: Path,
) -> None:
    offline = f"{REPO}:offline-{deployment_id}"
    image = docker_client.images.get(test_images.v1)
    image.tag(offline)
    tarball = tmp_path / "package.tar"
    with tarball.open("wb") as fh:
        for chunk in docker_client.images.get(offline).save(named=True):
            fh.write(chunk)
    docker_client.images.remove(offline)
    try:
        assert offline in import_image(docker_client, tarball)
        d = desired(deployment_id, release(image=offline))
        ex = make_reconciler()
        store.put(d)
        ex.submit(deployment_id)
        assert isinstance(sink.outcome(d.command_id or ""), CommandSucceeded)
    finally:
        for c in docker_client.containers.list(all=True, filters={"ancestor": offline}):
            c.remove(force=True)
        docker_client.images.remove(offline, force=True)


@pytest.mark.docker
def test_import_of_a_broken_package_fails_clearly(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(ImageImportFailed):
        import_image(docker_client, bad)
    with pytest.raises(ImageImportFailed):
        import_image(docker_client, tmp_path / "missing.tar")
