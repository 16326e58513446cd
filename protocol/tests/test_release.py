"""The release specification: a valid release, and every validation with a readable error."""

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from fleetwire.protocol.release import (
    HealthCheck,
    PortMapping,
    ReleaseSpec,
    RestartPolicy,
    parse_port,
)
from tests.factories import container_dict, release_dict


def _release() -> dict[str, Any]:
    """A release body using every field (a fresh dict each call: tests mutate it)."""
    return release_dict(
        "telemetry",
        "1.4.2-rc.1+build.7",
        system_models=["rpi4-64"],
        containers=[
            container_dict(
                "collector",
                "registry.example.com:5000/acme/collector:1.4.2",
                credentials="acme",
                env={"LOG_LEVEL": "info", "_PRIVATE": "1", "a1": "x"},
                ports=["8080", "8081:80", "127.0.0.1:8082:80/tcp", "[::1]:8083:80", "53/udp"],
                binds=["/etc/acme:/etc/acme:ro", "/var/log/acme:/logs"],
                volumes=["data:/data:rw"],
                networks=["backend"],
                restart_policy="on-failure",
                health_check={"test": ["CMD-SHELL", "true"], "interval_s": 5},
            ),
            container_dict("cache", "redis:7", networks=["backend"], ports=["8080/udp"]),
        ],
        volumes=[{"name": "data"}],
        networks=[{"name": "backend", "internal": True}],
    )


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        ReleaseSpec.model_validate(spec)
    return str(info.value)


def test_valid_release():
    release = ReleaseSpec.model_validate(_release())
    assert release.containers[0].restart_policy is RestartPolicy.ON_FAILURE
    assert release.containers[1].restart_policy is RestartPolicy.UNLESS_STOPPED
    assert release.semver().prerelease == "rc.1"
    assert release.supports("rpi4-64")
    assert not release.supports("x86")
    assert not release.supports(None)
    assert ReleaseSpec.model_validate({**_release(), "system_models": []}).supports(None)


def test_release_is_frozen_and_closed():
    release = ReleaseSpec.model_validate(_release())
    with pytest.raises(ValidationError):
        release.version = "2.0.0"
    assert "extra" in _error({**_release(), "owner": "me"}).lower()


def _mutate(path: list[Any], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(_release())
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["version"], "1.4", "is not a semantic version"),
        (["version"], "v1.4.2", "is not a semantic version"),
        (["version"], "01.4.2", "is not a semantic version"),
        (["application"], "bad name", "should match pattern"),
        (["containers"], [], "at least 1 item"),
        (["containers", 0, "name"], "cache", "duplicate container names ['cache']"),
        (["volumes"], [{"name": "data"}, {"name": "data"}], "duplicate volume names ['data']"),
        (
            ["networks"],
            [{"name": "backend"}, {"name": "backend"}],
            "duplicate network names ['backend']",
        ),
        (["containers", 0, "ports"], ["0"], "0 is outside 1-65535"),
        (["containers", 0, "ports"], ["70000:80"], "70000 is outside 1-65535"),
        (["containers", 0, "ports"], ["80/icmp"], "must look like [ip:][host_port:]"),
        (["containers", 0, "ports"], ["http"], "must look like"),
        (["containers", 0, "ports"], ["8080\n"], "must look like"),
        (["containers", 0, "binds"], ["etc:/etc"], "host path 'etc' must be absolute"),
        (["containers", 0, "binds"], ["/etc:etc"], "container path 'etc' must be absolute"),
        (["containers", 0, "binds"], ["/etc"], "must look like SOURCE:/container/path"),
        (["containers", 0, "binds"], ["/etc:/etc:rx"], "mode 'rx' must be ro or rw"),
        (
            ["containers", 0, "binds"],
            ["/a:/data", "/b:/etc/acme"],
            "mounts ['/data'] more than once",
        ),
        (["containers", 0, "volumes"], ["/data:/data"], "must name a volume of the release"),
        (["containers", 0, "volumes"], ["logs:/srv/logs"], "mounts undeclared volume 'logs'"),
        (["containers", 0, "networks"], ["frontend"], "joins undeclared network 'frontend'"),
        (["containers", 0, "networks"], ["backend", "backend"], "lists a network twice"),
        (["containers", 1, "ports"], ["8081:81"], "host ports ['*:8081/tcp'] are published twice"),
        (["containers", 0, "env"], {"BAD-NAME": "1"}, "['BAD-NAME'] must match"),
        (["containers", 0, "env"], {"1ST": "1"}, "['1ST'] must match"),
        (["containers", 0, "env"], {"": "1"}, "[''] must match"),
        (["containers", 0, "env"], {"OK\n": "1"}, "['OK\\n'] must match"),
        (["containers", 0, "image"], "Acme/App", "repository component"),
        (["containers", 0, "restart_policy"], "sometimes", "restart_policy"),
        (["containers", 0, "health_check"], {"test": ["true"]}, "must start with CMD"),
        (["containers", 0, "health_check"], {"test": ["CMD"]}, "needs a command"),
        (["containers", 0, "health_check"], {"test": []}, "at least 1 item"),
    ],
)
def test_validation_errors_are_readable(path, value, message):
    assert message in _error(_mutate(path, value))


def test_same_host_port_on_other_protocol_or_ip_is_allowed():
    spec = _mutate(["containers", 1, "ports"], ["8081:80/udp", "10.0.0.1:8081:80"])
    ReleaseSpec.model_validate(spec)


def test_all_problems_reported_together():
    spec = _mutate(["containers", 0, "networks"], ["frontend"])
    spec["containers"][1]["name"] = "collector"
    error = _error(spec)
    assert "duplicate container names" in error
    assert "undeclared network 'frontend'" in error


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("80", PortMapping(host_ip=None, host_port=None, container_port=80, protocol="tcp")),
        ("8080:80", PortMapping(host_ip=None, host_port=8080, container_port=80, protocol="tcp")),
        (
            "127.0.0.1:53:53/udp",
            PortMapping(host_ip="127.0.0.1", host_port=53, container_port=53, protocol="udp"),
        ),
        (
            "[::1]:1:2/sctp",
            PortMapping(host_ip="[::1]", host_port=1, container_port=2, protocol="sctp"),
        ),
    ],
)
def test_parse_port(port, expected):
    assert parse_port(port) == expected


def test_health_check_none_needs_no_command():
    assert HealthCheck(test=["NONE"]).test == ["NONE"]
