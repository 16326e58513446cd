"""The fleetwire-edge command line, against a data dir prepared through the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.tests.agent_support import DEVICE, FakeReconciler, deploy, simple, upgrade
from fleetwire.edge.cli import app
from fleetwire.edge.handler import CommandHandler
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import encode

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = Store.open(tmp_path)
    store.set_setting("device_id", DEVICE)
    outbox = Outbox(store, DEVICE)
    handler = CommandHandler(
        device_id=DEVICE, outbox=outbox, desired=store, reconciler=FakeReconciler(store, outbox)
    )
    handler.handle(encode(deploy("dep-1")))
    handler.handle(encode(deploy("dep-2")))
    handler.handle(encode(upgrade("dep-2", "2.0.0")))
    handler.handle(encode(simple("stop", "dep-1")))
    handler.handle(encode(simple("start", "missing-dep")))
    store.close()
    return tmp_path


def test_history_newest_first(data_dir: Path) -> None:
    result = runner.invoke(app, ["history", "--data-dir", str(data_dir)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "missing-dep" in line or "dep-" in line]
    assert "start" in lines[0]
    assert "rejected" in lines[0]
    assert "unknown_deployment" in lines[0]
    assert "deploy" in lines[-1]
    assert "succeeded" in lines[-1]


def test_history_limit(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["history", "--data-dir", str(data_dir), "--limit", "2"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "missing-dep" in result.output
    assert "stop" in result.output
    assert "upgrade" not in result.output
    statuses = [
        line for line in result.output.splitlines() if "rejected" in line or "succeeded" in line
    ]
    assert len(statuses) == 2


def test_status_shows_desired_state_without_the_engine(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["status", "--data-dir", str(data_dir), "--no-engine"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line for line in result.output.splitlines() if "dep-" in line
    }
    assert "stopped" in rows["dep-1"]
    assert "running" in rows["dep-2"]
    assert "2.0.0 (from 1.0.0)" in rows["dep-2"]


def test_status_of_an_empty_dir_fails_plainly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--data-dir", str(tmp_path), "--no-engine"])
    assert result.exit_code == 1
    assert "no agent data" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("device_id", ["bad/id", "+", "-starts-with-dash", "x" * 65])
def test_run_with_a_bad_device_id_exits_2(tmp_path: Path, device_id: str) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            "--device-id",
            device_id,
            "--broker",
            "mqtt://127.0.0.1:1",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "device_id must be" in result.output
    assert "Traceback" not in result.output


def test_run_with_a_missing_password_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            "--device-id",
            DEVICE,
            "--data-dir",
            str(tmp_path),
            "--username",
            "u",
            "--password-file",
            str(tmp_path / "nope"),
        ],
    )
    assert result.exit_code == 2
    assert "cannot read the password file" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith("fleetwire-edge ")
