"""The newcomer's path: ``fleetwire dev`` as the README starts it, then the README's commands."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.e2e.stack import wait_until
from tests.fixtures.net import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
DEMO_PORT = 18080


def _uv(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--frozen", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class DevProcess:
    """``uv run fleetwire dev`` in a process group of its own; its output is read as it comes."""

    def __init__(self, env: dict[str, str], mqtt_port: int, api_port: int) -> None:
        self.env, self.mqtt_port, self.api_port = env, mqtt_port, api_port
        self.proc: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.lines: list[str] = []
        self.first_line = 0

    @property
    def output(self) -> str:
        """Everything the process printed so far (over all its starts)."""
        return "".join(self.lines)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "uv",
                "run",
                "--frozen",
                "fleetwire",
                "dev",
                f"--mqtt-port={self.mqtt_port}",
                f"--api-port={self.api_port}",
            ],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.first_line = len(self.lines)
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()
        # A newcomer waits for the banner (printed once the local agent is online), then types.
        wait_until(self._ready, timeout=60, what="fleetwire dev to say it is running")

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            assert self.reader is not None
            self.reader.join(10)
            raise AssertionError(f"fleetwire dev exited {self.proc.returncode}:\n{self.output}")
        if "Try, in another terminal" not in "".join(self.lines[self.first_line :]):
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.api_port}/healthz", timeout=2).is_success
        except httpx.HTTPError:
            return False

    def interrupt(self) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        assert self.reader is not None
        self.reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        code = self.proc.returncode
        self.proc = None
        return code


@pytest.fixture
def dev_env(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "FLEETWIRE_DEV_DIR": str(tmp_path / "dev"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("FLEETWIRE_API_URL", None)
    env.pop("FLEETWIRE_TOKEN", None)
    yield env
    for container in docker_client.containers.list(
        all=True, filters={"label": "io.fleetwire.device=local-edge"}
    ):
        container.remove(force=True)
    for volume in docker_client.volumes.list(filters={"label": "io.fleetwire.device=local-edge"}):
        volume.remove(force=True)


def test_readme_first_deployment(dev_env: dict[str, str]) -> None:
    dev = DevProcess(dev_env, free_port(), free_port())
    dev.start()
    try:
        build = subprocess.run(
            [str(REPO / "examples/demo/build-images.sh")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert build.returncode == 0, build.stderr
        created = _uv(
            "fleetwire", "release", "create", "examples/demo/demo-1.0.0.yaml", env=dev_env
        )
        assert created.returncode == 0, created.stdout + created.stderr
        deployed = _uv(
            "fleetwire",
            "deploy",
            "demo",
            "1.0.0",
            "--device",
            "local-edge",
            "--wait",
            "--timeout",
            "90",
            env=dev_env,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "healthy" in deployed.stdout
        answer = wait_until(
            lambda: _get(f"http://127.0.0.1:{DEMO_PORT}/"), timeout=15, what="the demo app"
        )
        assert "Fleetwire demo 1.0.0" in answer
        listed = _uv("fleetwire", "deployments", env=dev_env)
        assert "running" in listed.stdout
    finally:
        code = dev.interrupt()
    assert code == 0, dev.output
    assert "stopped" in dev.output

    # The next start keeps the data: the deployment is still known.
    dev.start()
    try:
        listed = _uv("fleetwire", "deployments", env=dev_env)
        assert listed.returncode == 0, listed.stderr
        assert "demo" in listed.stdout
    finally:
        assert dev.interrupt() == 0, dev.output


def _get(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.is_success else None


def test_dev_without_docker_runs_the_cloud_alone(dev_env: dict[str, str]) -> None:
    env = {**dev_env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    dev = DevProcess(env, free_port(), free_port())
    dev.start()  # returns once the banner is out: the "no local edge agent" line comes before it
    listed = _uv("fleetwire", "devices", env=env)
    assert listed.returncode == 0, listed.stderr
    assert dev.interrupt() == 0
    assert "no local edge agent" in dev.output
