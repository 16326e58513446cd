"""Compose-like application files -> release specs."""

from pathlib import Path

import pytest

from fleetwire.cloud.operator.compose import ComposeError, load_release

EXAMPLES = Path(__file__).parents[3] / "examples" / "demo"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("demo-*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid_releases(path: Path) -> None:
    release = load_release(path.read_text())
    assert release.application == "demo"
    web = release.containers[0]
    assert web.image.startswith("fleetwire-demo/web:")
    assert web.volumes == ["data:/data"]
    assert web.health_check is not None
    assert web.health_check.interval_s == 1.0


def test_full_service_mapping() -> None:
    release = load_release(
        """
application: shop
version: 2.1.0-rc.1
system_models: [rpi4]
services:
  api:
    image: registry.example.com:5000/shop/api:2.1@sha256:"""
        + "a" * 64
        + """
    credentials: private-registry
    command: serve --port 80
    environment: [MODE=prod, EMPTY=]
    ports: ["127.0.0.1:8080:80/tcp"]
    volumes: ["/var/log/shop:/logs:ro", "cache:/cache"]
    networks: [backend]
    restart: always
    init: true
    stop_grace_period: 1m30s
    healthcheck:
      test: curl -f http://localhost/health
      interval: 500ms
volumes:
  cache: {driver: local}
networks:
  backend: {internal: true}
"""
    )
    api = release.containers[0]
    assert api.command == ["sh", "-c", "serve --port 80"]
    assert api.env == {"MODE": "prod", "EMPTY": ""}
    assert api.binds == ["/var/log/shop:/logs:ro"]
    assert api.volumes == ["cache:/cache"]
    assert api.stop_timeout_s == 90
    assert api.health_check is not None
    assert api.health_check.test == ["CMD-SHELL", "curl -f http://localhost/health"]
    assert api.health_check.interval_s == 0.5
    assert release.networks[0].internal is True
    assert release.supports("rpi4")
    assert not release.supports("x86")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("application: a\nversion: 1.0.0\n", "at least one service"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("application: [unclosed\n", "not valid YAML"),
        ("application: a\nversion: 1.0\nservices: {web: {image: x}}\n", "semantic version"),
        ("application: a\nversion: 1.0.0\nservices: {web: {image: x, build: .}}\n", "build"),
        ("application: a\nversion: 1.0.0\nservices: {web: {image: x, volumes: [d:/d]}}\n", "d"),
        ("application: a\nversion: 1.0.0\nservices: {web: {image: 'X Y'}}\n", "image"),
        (
            "application: a\nversion: 1.0.0\nservices: {w: {image: x, stop_grace_period: soon}}\n",
            "duration",
        ),
        ("application: a\nversion: 1.0.0\nservices: {web: {image: x}}\nconfigs: {}\n", "configs"),
    ],
)
def test_bad_files_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ComposeError, match=needle):
        load_release(text)
