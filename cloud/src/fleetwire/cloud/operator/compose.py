"""Compose-like application files -> Fleetwire release specs.

Operators describe a release the way they already describe containers locally: a YAML file
shaped like a small subset of the Compose specification, plus ``application`` and ``version``.
Anything the subset does not cover is refused with the key's path, never silently dropped.
"""

import re
from typing import Any, Final

import yaml
from pydantic import ValidationError

from fleetwire.protocol.release import ReleaseSpec

_DURATION_RE = re.compile(
    r"^(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?$"
)
_SERVICE_KEYS: Final = frozenset(
    {
        "image",
        "credentials",
        "command",
        "entrypoint",
        "environment",
        "ports",
        "volumes",
        "networks",
        "restart",
        "healthcheck",
        "init",
        "stop_grace_period",
    }
)
_TOP_KEYS: Final = frozenset(
    {"application", "version", "system_models", "services", "volumes", "networks"}
)
_HEALTH_KEYS: Final = frozenset({"test", "interval", "timeout", "retries", "start_period"})


class ComposeError(ValueError):
    """The application file cannot be turned into a release; the message names the key."""


def _duration(value: object, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value and (m := _DURATION_RE.match(value)):
        return float(m["m"] or 0) * 60 + float(m["s"] or 0) + float(m["ms"] or 0) / 1000
    raise ComposeError(f"{where}: {value!r} is not a duration like 10s, 1m30s or 500ms")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ComposeError(f"{where}: expected a mapping")
    return value


def _environment(value: object, where: str) -> dict[str, str]:
    if isinstance(value, list):
        env: dict[str, str] = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ComposeError(f"{where}: list items must be NAME=value, got {item!r}")
            name, _, val = item.partition("=")
            env[name] = val
        return env
    return {str(k): "" if v is None else str(v) for k, v in _mapping(value, where).items()}


def _unknown(keys: object, allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(_mapping(keys, where)) - allowed)
    if extra:
        raise ComposeError(f"{where}: unsupported keys {extra} (supported: {sorted(allowed)})")


def _healthcheck(value: object, where: str) -> dict[str, Any] | None:
    hc = _mapping(value, where)
    if not hc:
        return None
    _unknown(hc, _HEALTH_KEYS, where)
    test = hc.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    out: dict[str, Any] = {"test": test}
    for key, field in (
        ("interval", "interval_s"),
        ("timeout", "timeout_s"),
        ("start_period", "start_period_s"),
    ):
        if key in hc:
            out[field] = _duration(hc[key], f"{where}.{key}")
    if "retries" in hc:
        out["retries"] = hc["retries"]
    return out


def _service(name: str, svc: dict[str, Any], named_volumes: set[str]) -> dict[str, Any]:
    where = f"services.{name}"
    _unknown(svc, _SERVICE_KEYS, where)
    binds: list[str] = []
    mounts: list[str] = []
    for vol in svc.get("volumes") or []:
        if not isinstance(vol, str):
            raise ComposeError(f"{where}.volumes: only the short SOURCE:TARGET[:MODE] syntax")
        (binds if vol.startswith("/") else mounts).append(vol)
        if not vol.startswith("/") and vol.split(":")[0] not in named_volumes:
            raise ComposeError(f"{where}.volumes: {vol!r} names no top-level volume")
    command = svc.get("command")
    if isinstance(command, str):
        command = ["sh", "-c", command]
    spec: dict[str, Any] = {
        "name": name,
        "image": svc.get("image"),
        "env": _environment(svc.get("environment"), f"{where}.environment"),
        "ports": [str(p) for p in svc.get("ports") or []],
        "binds": binds,
        "volumes": mounts,
        "networks": list(svc.get("networks") or []),
    }
    for key, field in (
        ("credentials", "credentials"),
        ("entrypoint", "entrypoint"),
        ("restart", "restart_policy"),
        ("init", "init"),
    ):
        if key in svc:
            spec[field] = svc[key]
    if command is not None:
        spec["command"] = command
    if "stop_grace_period" in svc:
        spec["stop_timeout_s"] = int(
            _duration(svc["stop_grace_period"], f"{where}.stop_grace_period")
        )
    if (hc := _healthcheck(svc.get("healthcheck"), f"{where}.healthcheck")) is not None:
        spec["health_check"] = hc
    return spec


def release_from_compose(document: dict[str, Any]) -> ReleaseSpec:
    """Build and validate a release from a parsed compose-like document."""
    _unknown(document, _TOP_KEYS, "<top level>")
    volumes = _mapping(document.get("volumes"), "volumes")
    networks = _mapping(document.get("networks"), "networks")
    services = _mapping(document.get("services"), "services")
    if not services:
        raise ComposeError("services: at least one service is required")
    raw = {
        "application": document.get("application"),
        "version": str(document.get("version", "")),
        "system_models": document.get("system_models") or [],
        "containers": [
            _service(str(n), _mapping(s, f"services.{n}"), set(volumes))
            for n, s in services.items()
        ],
        "volumes": [{"name": n, **_mapping(v, f"volumes.{n}")} for n, v in volumes.items()],
        "networks": [{"name": n, **_mapping(v, f"networks.{n}")} for n, v in networks.items()],
    }
    try:
        return ReleaseSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ComposeError("invalid release:\n  " + "\n  ".join(lines)) from None


def load_release(text: str) -> ReleaseSpec:
    """Parse YAML text and build the release it describes."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ComposeError(f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ComposeError("the application file must be a YAML mapping")
    return release_from_compose(document)
