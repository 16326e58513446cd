"""Configuration: precedence, validation, secrets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fleetwire.edge.backoff import Backoff
from fleetwire.edge.config import load_config, parse_broker_url
from fleetwire.edge.errors import ConfigError


def test_precedence_file_env_options(tmp_path: Path) -> None:
    cfg_file = tmp_path / "edge.yaml"
    cfg_file.write_text(
        "device-id: from-file\nbroker: mqtt://file:1883\nsystem_model: rpi4-64\n"
        f"data_dir: {tmp_path}\n",
        encoding="utf-8",
    )
    env = {"FLEETWIRE_EDGE_BROKER": "mqtts://env", "FLEETWIRE_EDGE_DEVICE_ID": "from-env"}
    cfg = load_config({"device_id": "from-cli", "broker": None}, config_file=cfg_file, environ=env)
    assert cfg.device_id == "from-cli"
    assert cfg.broker == "mqtts://env"
    assert cfg.address.tls
    assert cfg.address.port == 8883
    assert cfg.system_model == "rpi4-64"


def test_password_is_secret(tmp_path: Path) -> None:
    env = {"FLEETWIRE_EDGE_PASSWORD": "hunter2-very-secret"}
    cfg = load_config({"device_id": "d", "data_dir": tmp_path, "username": "d"}, environ=env)
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in str(cfg.model_dump())
    assert cfg.broker_password() == "hunter2-very-secret"


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n", encoding="utf-8")
    cfg = load_config(
        {"device_id": "d", "data_dir": tmp_path, "password_file": tmp_path / "pw"}, environ={}
    )
    assert cfg.broker_password() == "from-file"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device_id": "a/b"}, "device_id must be"),
        ({"device_id": "ok", "broker": "http://x"}, "mqtt://"),
        ({"device_id": "ok", "max_inflight": 50}, "max_inflight"),
        ({"device_id": "ok", "cert_file": "/c"}, "go together"),
        ({"device_id": "ok", "bogus": 1}, "bogus"),
    ],
)
def test_invalid(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"data_dir": tmp_path, **options}, environ={})


def test_bad_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config({}, config_file=bad, environ={})


def test_broker_url() -> None:
    assert parse_broker_url("mqtt://h").port == 1883
    assert parse_broker_url("mqtt://h:1999").port == 1999
    with pytest.raises(ValueError, match="no host"):
        parse_broker_url("mqtt://")


def test_backoff_is_jittered_exponential_and_bounded() -> None:
    b = Backoff(initial=1.0, maximum=8.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(20)]
    assert all(0.1 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 10
    b.reset()
    assert b.next_delay() <= 1.0
