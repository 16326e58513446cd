"""A whole Fleetwire system for end-to-end tests: cloud in-process, agent as a real process
(:class:`tests.agents.AgentProcess`, configured by the shared :func:`tests.agents.agent_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from fleetwire.cloud.serve import CloudServices
from fleetwire.cloud.settings import Settings
from tests.agents import AgentProcess, agent_config
from tests.fixtures.waiting import wait_until

__all__ = ["BrokerAccess", "Stack", "wait_until"]


@dataclass(frozen=True)
class BrokerAccess:
    """How the cloud and the device log in to the broker under test."""

    url: str
    cloud: tuple[str, str] | None
    device: tuple[str, str] | None


@dataclass
class Stack:
    """Cloud services, an agent process and an API client with an admin token."""

    broker: BrokerAccess
    device_id: str
    root: Path
    token: str = "e2e-admin-token-0123456789abcdef"
    services: CloudServices | None = None
    agent: AgentProcess | None = None
    api: httpx.Client = field(init=False)
    deployments: list[str] = field(default_factory=list)
    """Deployment ids a test created, for cleanup."""

    def start(self) -> None:
        """Start the cloud, register the device, start its agent and wait until it is online."""
        settings = Settings(
            environment="test",
            database_url=f"sqlite:///{self.root / 'cloud.db'}",
            broker_url=self.broker.url,
            broker_username=self.broker.cloud[0] if self.broker.cloud else None,
            broker_password=SecretStr(self.broker.cloud[1]) if self.broker.cloud else None,
            client_id=f"cloud-{self.device_id}",
            api_port=0,
            bootstrap_admin_token=SecretStr(self.token),
            secret_key=SecretStr("e2e-secret-key-0123456789abcdef0123"),
            gap_timeout_s=2.0,
        )
        self.services = CloudServices(settings)
        self.services.start()
        self.api = httpx.Client(
            base_url=f"{self.services.api_url}/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        self.call("POST", "/devices", {"id": self.device_id}, expect=201)
        self.start_agent()
        wait_until(
            lambda: self.call("GET", f"/devices/{self.device_id}")["online"],
            timeout=30,
            what="the device to come online",
        )

    def start_agent(self) -> None:
        """Start the agent as a child process (:class:`tests.agents.AgentProcess`)."""
        options: dict[str, Any] = {}
        if self.broker.device is not None:
            password_file = self.root / "device-password"
            password_file.write_text(self.broker.device[1], encoding="utf-8")
            options.update(username=self.broker.device[0], password_file=password_file)
        config = agent_config(self.root / "edge", self.broker.url, self.device_id, **options)
        self.agent = AgentProcess(config, self.root / "agent.log", log_level=None)
        self.agent.start()

    def stop(self) -> None:
        """Stop the agent, then the cloud (bounded)."""
        if self.agent is not None:
            self.agent.terminate()
            self.agent = None
        if self.services is not None:
            self.api.close()
            self.services.stop()
            self.services = None

    def call(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        """Call the API and check the status code."""
        response = self.api.request(method, path, json=body)
        assert response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return None if response.status_code == 204 else response.json()

    def agent_log(self) -> str:
        """What the agent process wrote so far."""
        return self.agent.output() if self.agent is not None else ""
