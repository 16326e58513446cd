"""Smoke tests of the shared fixture layer (tests/fixtures/): each fixture starts a real thing."""

from __future__ import annotations

import time

import docker
import pytest
import sqlalchemy
from paho.mqtt.enums import MQTTProtocolVersion

from tests.fixtures.docker import AppImages, DockerCleanup, container_health, wait_for_health
from tests.fixtures.mosquitto import MosquittoBroker
from tests.fixtures.mqtt import MQTT5, MQTT311, ProbeClient


@pytest.mark.postgres
def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
            name = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
            tables = conn.execute(
                sqlalchemy.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert str(name).startswith("fw_test_")
    assert tables == 0


@pytest.mark.docker
def test_images_serve_their_version_and_turn_healthy(
    docker_client: docker.DockerClient, test_images: AppImages, docker_cleanup: DockerCleanup
) -> None:
    for tag, version in ((test_images.v1, b"v1"), (test_images.v2, b"v2")):
        container = docker_client.containers.run(tag, detach=True, labels=docker_cleanup.labels)
        wait_for_health(container, "healthy", timeout=15)
        url = f"http://127.0.0.1:{test_images.port}/version"
        result = container.exec_run(["wget", "-q", "-O", "-", url])
        assert result.exit_code == 0
        assert isinstance(result.output, bytes)
        assert result.output.strip() == version
        started = time.monotonic()
        container.stop(timeout=10)
        assert time.monotonic() - started < 5, "SIGTERM must stop the container promptly"


@pytest.mark.docker
def test_v3_runs_but_turns_unhealthy(
    docker_client: docker.DockerClient, test_images: AppImages, docker_cleanup: DockerCleanup
) -> None:
    container = docker_client.containers.run(
        test_images.v3_unhealthy, detach=True, labels=docker_cleanup.labels
    )
    wait_for_health(container, "unhealthy", timeout=15)
    container.reload()
    assert container.status == "running"
    assert container_health(container) == "unhealthy"


@pytest.mark.docker
def test_docker_cleanup_removes_labelled_objects(
    docker_client: docker.DockerClient, test_images: AppImages
) -> None:
    scope = DockerCleanup(docker_client)
    network = docker_client.networks.create(f"fw-test-{scope.value[:12]}", labels=scope.labels)
    volume = docker_client.volumes.create(labels=scope.labels)
    docker_client.containers.create(test_images.v1, labels=scope.labels)
    scope.cleanup()
    assert docker_client.containers.list(all=True, filters=scope.label_filter) == []
    assert docker_client.networks.list(filters=scope.label_filter) == []
    assert docker_client.volumes.list(filters=scope.label_filter) == []
    del network, volume


@pytest.mark.mosquitto
@pytest.mark.parametrize("protocol", [MQTT5, MQTT311], ids=["mqtt5", "mqtt311"])
def test_mosquitto_restart_keeps_queued_message(
    mosquitto: MosquittoBroker, protocol: MQTTProtocolVersion
) -> None:
    topic = "fleetwire/v1/devices/restart-1/commands"
    subscriber = ProbeClient(
        mosquitto.host, mosquitto.port, client_id="restart-1", protocol=protocol, clean=False
    )
    with subscriber:
        assert subscriber.subscribe(topic)[0].value == 1
    with ProbeClient(mosquitto.host, mosquitto.port, client_id="pub-1") as publisher:
        publisher.publish(topic, b"queued-1")

    mosquitto.stop()  # a clean stop writes the persistence file
    assert not mosquitto.running
    mosquitto.start()

    with subscriber:
        assert subscriber.session_present
        message = subscriber.expect(timeout=5)
        assert (message.topic, message.payload, message.qos) == (topic, b"queued-1", 1)
        subscriber.expect_nothing(0.5)
