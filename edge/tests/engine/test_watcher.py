"""The container watcher's event stream against a real engine: it never outlives a stop."""

import threading
from typing import Any, cast

import docker

from fleetwire.edge.engine.watcher import ContainerWatcher
from tests.fixtures.waiting import wait_until


class _GatedClient:
    """Holds ``events()`` until the test opens the gate: a stop can land while it opens."""

    def __init__(self, real: docker.DockerClient) -> None:
        self.api = real.api
        self._real = real
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.streams: list[Any] = []

    def events(self, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        stream = self._real.events(**kwargs)
        self.streams.append(stream)
        return stream


def _closed(stream: Any) -> bool:
    """The stream's socket is closed (the SDK's close shuts the socket, not the response)."""
    raw = stream._response.raw
    fp = None if raw.closed else raw._fp.fp
    return fp is None or fp.raw._sock.fileno() == -1


def test_a_stream_opened_while_stopping_is_closed_and_the_reader_ends(
    docker_client: docker.DockerClient,
) -> None:
    client = _GatedClient(docker_client)
    watcher = ContainerWatcher(
        cast("docker.DockerClient", client), lambda _c: None, device_id="watcher-test"
    )
    watcher.start()
    assert client.entered.wait(30)
    watcher.stop(timeout_s=0)  # stop lands before the stream exists
    client.gate.set()
    reader = next(t for t in watcher._threads if t.name == "fw-engine-events")
    reader.join(30)
    assert not reader.is_alive(), "the reader kept a stream nobody will close"
    (stream,) = client.streams
    assert _closed(stream)


def test_stop_closes_the_open_stream_and_ends_the_reader(
    docker_client: docker.DockerClient,
) -> None:
    client = _GatedClient(docker_client)
    client.gate.set()
    watcher = ContainerWatcher(
        cast("docker.DockerClient", client), lambda _c: None, device_id="watcher-test"
    )
    watcher.start()
    wait_until(lambda: client.streams, 30, "the event stream to open")
    watcher.stop(timeout_s=30)
    assert not any(t.is_alive() for t in watcher._threads)
    assert _closed(client.streams[0])
