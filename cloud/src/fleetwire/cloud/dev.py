"""``fleetwire dev``: the whole system in one process, on embedded defaults.

The embedded amqtt broker, a SQLite read model, the API, the relay and the projector run in this
process on 127.0.0.1; a local edge agent runs as a child process when a Docker Engine answers.
Everything lives under one data directory (``.fleetwire/dev`` by default), so the next start
finds the same identities, token and data.
"""

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, Self

import httpx
from pydantic import SecretStr

from fleetwire.cloud.embedded.broker import (
    CLOUD_USER,
    INTEGRATOR_USER,
    EmbeddedBroker,
    MqttCredentials,
    load_template,
    render_config,
    write_password_file,
)
from fleetwire.cloud.operator.client import DEV_STATE_FILE
from fleetwire.cloud.serve import CloudServices
from fleetwire.cloud.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_DEVICE_ID: Final = "local-edge"
AGENT_STOP_TIMEOUT_S: Final = 20.0
AGENT_ONLINE_TIMEOUT_S: Final = 30.0


class DevError(RuntimeError):
    """The dev stack cannot start; the message says what to do."""


@dataclass
class DevState:
    """What must stay the same from one ``fleetwire dev`` to the next (kept in dev.json, 0600)."""

    mqtt_port: int
    api_port: int
    device_id: str
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    passwords: dict[str, str] = field(default_factory=dict)
    api_url: str = ""

    def identity(self, username: str) -> MqttCredentials:
        """The broker identity of ``username``, created on first use."""
        if username not in self.passwords:
            self.passwords[username] = MqttCredentials.generate(username).password
        return MqttCredentials(username, self.passwords[username])

    @classmethod
    def load(cls, path: Path, *, mqtt_port: int, api_port: int, device_id: str) -> Self:
        """The saved state, or a new one with these ports and device."""
        if path.is_file():
            try:
                return cls(**json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:
                msg = f"{path} is damaged ({exc}); remove the directory to start afresh"
                raise DevError(msg) from None
        return cls(mqtt_port=mqtt_port, api_port=api_port, device_id=device_id)

    def save(self, path: Path) -> None:
        """Write the state readable by its owner only."""
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")


def docker_problem() -> str | None:
    """None when a Docker Engine answers ``/_ping``, else why not."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        transport = httpx.HTTPTransport(uds=host.removeprefix("unix://"))
        base = "http://docker"
    elif host.startswith("tcp://"):
        transport, base = httpx.HTTPTransport(), "http://" + host.removeprefix("tcp://")
    else:
        return f"DOCKER_HOST={host} is not unix:// or tcp://"
    try:
        with httpx.Client(transport=transport, base_url=base, timeout=3.0) as client:
            response = client.get("/_ping")
    except httpx.HTTPError as exc:
        return f"no Docker Engine at {host} ({exc})"
    return None if response.status_code == 200 else f"Docker at {host} answered {response}"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers themselves bind (asyncio and uvicorn set SO_REUSEADDR): connections of
        # a previous run still in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _agent_command() -> list[str]:
    script = Path(sys.executable).with_name("fleetwire-edge")
    if script.exists():
        return [str(script)]
    found = shutil.which("fleetwire-edge")
    if found is None:
        msg = "fleetwire-edge is not installed (uv sync --all-packages installs it)"
        raise DevError(msg)
    return [found]


class DevStack:
    """Broker, cloud services and a local agent, started and stopped together."""

    def __init__(
        self,
        data_dir: Path,
        *,
        mqtt_port: int = 1883,
        api_port: int = 8080,
        device_id: str = DEFAULT_DEVICE_ID,
        agent: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.state_path = self.data_dir / DEV_STATE_FILE
        self.state = DevState.load(
            self.state_path, mqtt_port=mqtt_port, api_port=api_port, device_id=device_id
        )
        self.want_agent = agent
        self.broker: EmbeddedBroker | None = None
        self.services: CloudServices | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.agent_problem: str | None = None

    @property
    def mqtt_url(self) -> str:
        """Where the embedded broker listens."""
        return f"mqtt://127.0.0.1:{self.state.mqtt_port}"

    @property
    def agent_log(self) -> Path:
        """The local agent's log file."""
        return self.data_dir / "edge" / "agent.log"

    def start(self) -> None:
        """Start broker, cloud and agent; on failure, stop what started and raise."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        for name, port in (("MQTT", self.state.mqtt_port), ("API", self.state.api_port)):
            if not _port_free(port):
                msg = (
                    f"port {port} for the {name} is in use (another fleetwire dev?); "
                    f"choose another with --{name.lower()}-port or stop the other process"
                )
                raise DevError(msg)
        try:
            self._start_broker()
            self._start_cloud()
            self._start_agent()
        except BaseException:
            self.stop()
            raise
        self.state.save(self.state_path)

    def _start_broker(self) -> None:
        users = [
            self.state.identity(CLOUD_USER),
            self.state.identity(INTEGRATOR_USER),
            self.state.identity(self.state.device_id),
        ]
        password_file = write_password_file(self.data_dir / "mqtt-passwords", users)
        config = render_config(
            load_template(),
            bind=f"127.0.0.1:{self.state.mqtt_port}",
            password_file=password_file,
            db_path=self.data_dir / "mqtt-sessions.db",
            device_ids=[self.state.device_id],
        )
        self.broker = EmbeddedBroker(host="127.0.0.1", port=self.state.mqtt_port, config=config)
        self.broker.start()

    def _start_cloud(self) -> None:
        cloud = self.state.identity(CLOUD_USER)
        settings = Settings(
            environment="development",
            # The embedded amqtt speaks 3.1.1 only: asking it for MQTT 5 first costs a timeout
            # and makes it log a traceback per refused connection.
            mqtt_protocol="3.1.1",
            database_url=f"sqlite:///{self.data_dir / 'fleetwire.db'}",
            broker_url=self.mqtt_url,
            broker_username=cloud.username,
            broker_password=SecretStr(cloud.password),
            api_host="127.0.0.1",
            api_port=self.state.api_port,
            bootstrap_admin_token=SecretStr(self.state.admin_token),
            secret_key=SecretStr(self.state.secret_key),
        )
        self.services = CloudServices(settings)
        self.services.start()
        self.state.api_url = self.services.api_url

    def _register_device(self) -> None:
        headers = {"Authorization": f"Bearer {self.state.admin_token}"}
        with httpx.Client(base_url=self.state.api_url, headers=headers, timeout=10) as client:
            response = client.post("/v1/devices", json={"id": self.state.device_id})
        if response.status_code not in (201, 409):
            msg = f"registering {self.state.device_id} failed: {response.text}"
            raise DevError(msg)

    def _start_agent(self) -> None:
        if not self.want_agent:
            self.agent_problem = "disabled with --no-agent"
            return
        self.agent_problem = docker_problem()
        if self.agent_problem is not None:
            return
        self._register_device()
        edge_dir = self.data_dir / "edge"
        edge_dir.mkdir(exist_ok=True)
        device = self.state.identity(self.state.device_id)
        password_file = edge_dir / "mqtt-password"
        password_file.touch(mode=0o600, exist_ok=True)
        password_file.write_text(device.password, encoding="utf-8")
        command = [
            *_agent_command(),
            "run",
            f"--device-id={device.username}",
            f"--broker={self.mqtt_url}",
            f"--data-dir={edge_dir}",
            f"--username={device.username}",
            f"--password-file={password_file}",
        ]
        # The embedded amqtt speaks MQTT 3.1.1 only: an agent left on "auto" would first wait
        # its connect timeout for an MQTT 5 CONNACK that never comes.
        env = {**os.environ, "FLEETWIRE_EDGE_PROTOCOL": "3.1.1"}
        with self.agent_log.open("ab") as log_file:
            self.agent = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def wait_agent_online(
        self, timeout: float = AGENT_ONLINE_TIMEOUT_S, stop: threading.Event | None = None
    ) -> bool:
        """Wait (bounded) until the cloud has the local agent's birth; False if it has not.

        Until then a deploy to the device is refused (it announced no command types yet), so
        ``fleetwire dev`` says it is ready only after this. ``stop`` (Ctrl-C) ends the wait.
        """
        stop = stop or threading.Event()
        if self.agent is None:
            return False
        headers = {"Authorization": f"Bearer {self.state.admin_token}"}
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.state.api_url, headers=headers, timeout=5) as client:
            while True:
                if self.agent.poll() is not None:
                    return False
                try:
                    response = client.get(f"/v1/devices/{self.state.device_id}")
                    if response.is_success and response.json().get("online"):
                        return True
                except httpx.HTTPError:
                    pass
                if time.monotonic() >= deadline or stop.wait(0.2):
                    return False

    def stop(self) -> None:
        """Stop the agent, the cloud and the broker, in that order (bounded)."""
        if self.agent is not None:
            self.agent.terminate()
            try:
                self.agent.wait(AGENT_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait(5)
            self.agent = None
        if self.services is not None:
            self.services.stop()
            self.services = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set; report an agent that exits on its own."""
        while not stop.wait(1.0):
            if self.agent is not None and self.agent.poll() is not None:
                log.error(
                    "the local edge agent exited with %s; see %s",
                    self.agent.returncode,
                    self.agent_log,
                )
                self.agent_problem = f"exited with {self.agent.returncode} (see {self.agent_log})"
                self.agent = None
