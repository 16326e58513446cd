"""`fleetwire-edge run` as a process (real Docker reconciler): will on SIGKILL, clean SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.tests.agent_support import DEVICE
from fleetwire.protocol.codec import decode
from fleetwire.protocol.events import PresenceBirth, PresenceDeath
from fleetwire.protocol.topics import presence_topic
from tests.fixtures.mqtt import ProbeClient

pytestmark = [pytest.mark.docker, pytest.mark.mosquitto, pytest.mark.slow]


def start(url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fleetwire.edge.cli import main; main()",
                "run",
                "--device-id",
                DEVICE,
                "--broker",
                url,
                "--data-dir",
                str(data_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def presence(cloud: ProbeClient, timeout: float = 20.0) -> PresenceBirth | PresenceDeath:
    msg = cloud.expect(timeout)
    event = decode(bytes(msg.payload))
    assert isinstance(event, PresenceBirth | PresenceDeath)
    return event


def test_killed_process_leaves_its_will_and_sigterm_stops_cleanly(
    mosquitto: Any, docker_client: Any, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    with ProbeClient(mosquitto.host, mosquitto.port, client_id="cli-cloud") as cloud:
        cloud.subscribe(presence_topic(DEVICE))
        proc = start(mosquitto.url, tmp_path / "data", log)
        try:
            birth = presence(cloud)
            assert isinstance(birth, PresenceBirth), log.read_text()
            assert birth.data.docker_version, "the real reconciler reports the engine version"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            death = presence(cloud)
            assert isinstance(death, PresenceDeath)
            assert death.data.reason == "connection lost"

            proc = start(mosquitto.url, tmp_path / "data", log)
            assert isinstance(presence(cloud), PresenceBirth)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()
            death = presence(cloud)
            assert isinstance(death, PresenceDeath)
            assert death.data.reason == "agent stopped"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = log.read_text()
    assert "Traceback" not in text, text
