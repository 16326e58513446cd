"""``fleetwire-edge import PATH``: offline image packages for air-gapped devices (real engine)."""

from __future__ import annotations

import contextlib
import gzip
import shutil
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import ImageNotFound
from typer.testing import CliRunner

from fleetwire.edge.cli import app

pytestmark = pytest.mark.docker

runner = CliRunner()


@pytest.mark.parametrize("compressed", [False, True], ids=["tar", "tar.gz"])
def test_import_loads_a_docker_save_package(
    docker_client: docker.DockerClient, test_images: Any, tmp_path: Path, compressed: bool
) -> None:
    offline = f"fleetwire-test/offline:{uuid.uuid4().hex[:12]}"
    docker_client.images.get(test_images.v1).tag(offline)
    package = tmp_path / "package.tar"
    try:
        with package.open("wb") as fh:
            for chunk in docker_client.images.get(offline).save(named=offline):
                fh.write(chunk)
        if compressed:
            with package.open("rb") as src, gzip.open(tmp_path / "package.tar.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            package = tmp_path / "package.tar.gz"
        docker_client.images.remove(offline)
        with pytest.raises(ImageNotFound):
            docker_client.images.get(offline)

        result = runner.invoke(app, ["import", str(package)])
        assert result.exit_code == 0, result.output
        assert f"loaded {offline}" in result.output
        assert offline in (docker_client.images.get(offline).tags or [])
    finally:
        with contextlib.suppress(ImageNotFound):
            docker_client.images.remove(offline)


def test_import_of_a_bad_package_fails_plainly(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a docker save tarball")
    result = runner.invoke(app, ["import", str(bad)])
    assert result.exit_code == 1
    assert "error: image package bad.tar could not be loaded" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["import", str(tmp_path / "missing.tar")])
    assert result.exit_code == 1
    assert "does not exist" in result.output
