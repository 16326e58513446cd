"""Helpers for the cloud tests: settings, protocol message builders and a scripted device."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from paho.mqtt.enums import MQTTProtocolVersion

from fleetwire.cloud.projector import BatchStore, Received
from fleetwire.cloud.settings import Settings
from fleetwire.protocol.codec import DEFAULT_CODEC
from fleetwire.protocol.envelope import FIRST_SEQ, CommandEnvelope, EventEnvelope
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandSucceeded,
    ContainerStateChanged,
    DeploymentState,
    DeploymentStateChanged,
    Inventory,
    PresenceBirth,
)
from fleetwire.protocol.registry import COMMAND_TYPES
from fleetwire.protocol.topics import command_topic, event_topic, presence_topic
from tests import factories
from tests.fixtures.mqtt import MQTT5, ProbeClient

SECRET_KEY = "test-secret-key-0123456789abcdef"


class AsgiClient:
    """A synchronous client for an ASGI app (httpx's ASGITransport on a private event loop).

    Starlette's TestClient warns (deprecated with httpx), and warnings are errors here.
    """

    def __init__(self, app: FastAPI) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Send a request and return the whole response."""
        return self.loop.run_until_complete(self.client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        """GET."""
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        """POST."""
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        """PUT."""
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        """PATCH."""
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        """DELETE."""
        return self.request("DELETE", url, **kw)

    def close(self) -> None:
        """Close the client and its loop."""
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: fast polls and short gap timeouts."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "api_port": 0,
        "gap_timeout_s": 0.5,
        "relay_poll_interval_s": 0.1,
        "relay_backoff_max_s": 0.5,
        "relay_publish_timeout_s": 2.0,
        "sse_poll_interval_s": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


APP = "thermo"


def spec(version: str = "1.0.0", app: str = APP, **extra: Any) -> dict[str, Any]:
    """A valid release spec (the API's JSON body)."""
    return factories.release_dict(app, version, **extra)


def birth(
    device_id: str,
    types: tuple[str, ...] | list[str] = COMMAND_TYPES,
    system_model: str | None = "rpi4",
    **kw: Any,
) -> PresenceBirth:
    """A birth message announcing ``types``."""
    return factories.birth(device_id, types, system_model, **kw)


def dep_state(
    device_id: str,
    seq: int,
    deployment_id: str,
    state: DeploymentState | str = DeploymentState.RUNNING,
    version: str = "1.0.0",
    app: str = APP,
) -> DeploymentStateChanged:
    """A deployment state event."""
    return factories.deployment_state(
        device_id, deployment_id, state, seq, application=app, version=version
    )


def container_state(
    device_id: str, seq: int, deployment_id: str, name: str = "web", status: str = "running"
) -> ContainerStateChanged:
    """A container state event of release 1.0.0, healthy."""
    return factories.container_state(
        device_id,
        deployment_id,
        seq,
        name=name,
        image=factories.image_ref(APP),
        status=status,
        health="healthy",
    )


def inventory(
    device_id: str, seq: int, deployments: dict[str, list[str]], app: str = APP
) -> Inventory:
    """An inventory: deployment id -> container names, all running 1.0.0."""
    return factories.inventory(
        device_id,
        [
            factories.inventory_deployment(
                dep, [factories.running(n, "img:1") for n in names], application=app
            )
            for dep, names in deployments.items()
        ],
        seq,
    )


def accepted(device_id: str, seq: int, command_id: str) -> CommandAccepted:
    """A command-accepted event."""
    return factories.accepted(device_id, command_id, seq)


def succeeded(device_id: str, seq: int, command_id: str) -> CommandSucceeded:
    """A command-succeeded event."""
    return factories.succeeded(device_id, command_id, seq)


def topic_of(event: EventEnvelope) -> str:
    """The topic a device publishes ``event`` on."""
    if isinstance(event, PresenceBirth) or event.kind == "presence":
        return presence_topic(event.device_id)
    return event_topic(event.device_id, event.category)  # type: ignore[attr-defined]


class ScriptedDevice:
    """A paho client that speaks the protocol: birth, events with seq, receives commands."""

    def __init__(
        self,
        host: str,
        port: int,
        device_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        protocol: MQTTProtocolVersion = MQTT5,
        **birth_kw: Any,
    ) -> None:
        self.device_id = device_id
        self.seq = FIRST_SEQ
        self.birth_kw = birth_kw
        self.probe = ProbeClient(
            host,
            port,
            client_id=f"device-{device_id}",
            clean=False,
            username=username,
            password=password,
            protocol=protocol,
        )

    def connect(self) -> ScriptedDevice:
        """Connect, subscribe to the command topic, publish the birth (retained)."""
        self.probe.connect()
        self.probe.subscribe(command_topic(self.device_id))
        self.send(birth(self.device_id, **self.birth_kw), retain=True)
        return self

    def send(self, event: EventEnvelope, retain: bool = False) -> EventEnvelope:
        """Publish an event QoS 1."""
        self.probe.publish(topic_of(event), DEFAULT_CODEC.encode(event), retain=retain)
        return event

    def next_seq(self) -> int:
        """The next sequence number."""
        seq = self.seq
        self.seq += 1
        return seq

    def raw(self, topic: str, payload: bytes) -> None:
        """Publish arbitrary bytes."""
        self.probe.publish(topic, payload)

    def expect_command(self, timeout: float = 10.0) -> CommandEnvelope:
        """The next command received."""
        msg = self.probe.expect(timeout)
        return DEFAULT_CODEC.decode_as(bytes(msg.payload), CommandEnvelope)

    def close(self) -> None:
        """Disconnect."""
        self.probe.disconnect()


def seed_catalog(
    api: Any, versions: tuple[str, ...] = ("1.0.0", "1.1.0"), **spec_kw: Any
) -> list[str]:
    """Create application ``thermo`` with releases; returns their ids."""
    r = api.client.post("/v1/applications", json={"name": "thermo"}, headers=api.operator)
    assert r.status_code == 201, r.text
    ids = []
    for version in versions:
        r = api.client.post(
            "/v1/applications/thermo/releases", json=spec(version, **spec_kw), headers=api.operator
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def register(api: Any, device_id: str, system_model: str | None = "rpi4") -> None:
    """Register a device."""
    r = api.client.post(
        "/v1/devices", json={"id": device_id, "system_model": system_model}, headers=api.operator
    )
    assert r.status_code == 201, r.text


def feed(engine: Any, settings: Settings, *events: EventEnvelope) -> Any:
    """Project ``events`` as if they came off the broker (no broker involved)."""
    return BatchStore(engine).process(
        [Received(topic_of(e), DEFAULT_CODEC.encode(e)) for e in events]
    )
