"""compose.dev.yaml: valid against the Compose Specification, and wired the way we mean it.

Validation uses the Compose Specification's JSON Schema (vendored in compose_spec/, see its
README), after interpolating every ``${VAR:-default}`` with its default, as Compose does with
an empty environment. This needs neither a Compose binary nor a registry. The structural tests
check what the schema cannot: the services, the Docker socket of the agents, bind-mounted repo
paths, the broker configuration, and that the commands' flags exist in today's CLIs. Where Debian's
docker-compose 1.29 is installed, it must accept the file as well.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from jsonschema import Draft7Validator
from typer.core import TyperGroup

from fleetwire.cloud.cli import app as cloud_app
from fleetwire.edge.cli import app as edge_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.dev.yaml"
SCHEMA_FILE = Path(__file__).parent / "compose_spec" / "compose-spec.json"
DEV_CONF = ROOT / "broker-config" / "mosquitto" / "dev.conf"

SERVICES = {"mosquitto", "postgres", "cloud", "edge-1", "edge-2"}
EDGES = ("edge-1", "edge-2")
DOCKER_SOCKET = "/var/run/docker.sock"
# Settings the container's broker configuration may (must) set differently from dev.conf.
CONTAINER_ONLY_SETTINGS = {"listener", "persistence_location"}

# Compose interpolation: $$ (a literal $), $VAR, ${VAR}, ${VAR:-default} and the other
# operators (-, :?, ?, :+, +). The default may not itself hold a variable here.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}$]*))?\})"
)


def interpolate(value: str, env: Mapping[str, str], missing: set[str]) -> str:
    """``value`` with its variables substituted as Compose does; adds to ``missing`` the
    variables that have no value and no default."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["bare"] or match["name"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in (":+", "+"):
            present = current is not None and (op == "+" or current != "")
            return arg if present else ""
        if current is None:
            missing.add(name)
            return ""
        return current

    rest = _VARIABLE.sub(lambda m: "\0", value)
    assert "$" not in rest, f"unsupported interpolation in {value!r}"
    return _VARIABLE.sub(substitute, value)


def interpolate_tree(node: Any, env: Mapping[str, str], missing: set[str]) -> Any:
    """Interpolate every string value (not the keys) of a loaded YAML document."""
    if isinstance(node, str):
        return interpolate(node, env, missing)
    if isinstance(node, list):
        return [interpolate_tree(item, env, missing) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(item, env, missing) for key, item in node.items()}
    return node


@cache
def raw_compose() -> dict[str, Any]:
    """compose.dev.yaml as written (YAML anchors and merge keys resolved)."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def compose() -> dict[str, Any]:
    """compose.dev.yaml as Compose sees it with an empty environment."""
    missing: set[str] = set()
    resolved = interpolate_tree(raw_compose(), {}, missing)
    assert not missing, f"variables without a default: {sorted(missing)}"
    assert isinstance(resolved, dict)
    return resolved


def service(name: str) -> dict[str, Any]:
    found = compose()["services"][name]
    assert isinstance(found, dict)
    return found


def volume_mounts(name: str) -> list[tuple[str, str, str]]:
    """(source, target, mode) of a service's volumes (short syntax)."""
    mounts = []
    for entry in service(name).get("volumes", []):
        assert isinstance(entry, str), f"{name}: use the short volume syntax: {entry!r}"
        source, target, *mode = entry.split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def command_options(command: list[str]) -> tuple[str, dict[str, str]]:
    """The subcommand and its ``--option[=value]`` (or ``--option value``) arguments."""
    subcommand, *args = command
    options: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        assert arg.startswith("--"), f"unexpected positional argument {arg!r} in {command}"
        if "=" in arg:
            key, value = arg.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value = arg, args[i + 1]
            i += 1
        else:
            key, value = arg, ""
        options[key] = value
        i += 1
    return subcommand, options


def cli_options(app: typer.Typer, subcommand: str) -> set[str]:
    """Every option name (``--x``, ``--no-x``) of a typer subcommand."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    command = group.commands[subcommand]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def mosquitto_settings(path: Path) -> list[tuple[str, str]]:
    """The (setting, value) lines of a Mosquitto configuration file, comments dropped."""
    settings = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition(" ")
            settings.append((key, value.strip()))
    return settings


def test_validates_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    errors = sorted(
        Draft7Validator(schema).iter_errors(compose()), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_debians_docker_compose_accepts_it() -> None:
    """docker-compose 1.29 (Debian bookworm's only Compose) must run this file too."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_the_schema_check_catches_a_mistake() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    broken = compose()
    broken["services"]["cloud"]["depends_on"] = "postgres"  # must be a list or a mapping
    broken["services"]["edge-1"]["restart_policy"] = "always"  # no such key
    assert len(list(Draft7Validator(schema).iter_errors(broken))) >= 2


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "y"}, "y"),
        ("a$${A}b", {}, "a${A}b"),
        ("${A:+on}", {"A": "1"}, "on"),
        ("$A/${B}", {"A": "1", "B": "2"}, "1/2"),
    ],
)
def test_interpolation(value: str, env: dict[str, str], expected: str) -> None:
    missing: set[str] = set()
    assert interpolate(value, env, missing) == expected
    assert not missing


def test_services() -> None:
    assert set(compose()["services"]) == SERVICES


def test_depends_on_and_named_volumes_are_defined() -> None:
    declared = set(compose().get("volumes") or {})
    for name in SERVICES:
        depends = service(name).get("depends_on") or []
        assert set(depends) <= SERVICES - {name}, name
        for source, _target, _mode in volume_mounts(name):
            if not source.startswith(("/", ".")):
                assert source in declared, f"{name}: volume {source!r} is not declared"


def test_edge_agents_drive_the_hosts_docker_socket() -> None:
    for name in EDGES:
        assert (DOCKER_SOCKET, DOCKER_SOCKET, "rw") in volume_mounts(name), name
        # Non-root in the image: the socket's group gives it access.
        assert service(name)["group_add"], name


def test_mounted_repository_paths_exist() -> None:
    for name in SERVICES:
        for source, target, _mode in volume_mounts(name):
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} (-> {target}) is missing"


def test_third_party_images_are_variables_with_defaults() -> None:
    for name in ("mosquitto", "postgres"):
        image = raw_compose()["services"][name]["image"]
        assert re.fullmatch(r"\$\{FLEETWIRE_[A-Z_]+_IMAGE:-[^}]+\}", image), (name, image)


def test_fleetwire_images_are_local_and_never_pulled() -> None:
    for name, repository in (("cloud", "fleetwire/cloud"), *((e, "fleetwire/edge") for e in EDGES)):
        assert service(name)["image"] == f"{repository}:local", name
        assert service(name)["pull_policy"] == "never", name
        assert "build" not in service(name), name


def test_ports_are_published_on_localhost_only() -> None:
    for name in SERVICES:
        for port in service(name).get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_edge_commands_use_the_agents_flags() -> None:
    known = cli_options(edge_app, "run")
    device_ids = []
    for name in EDGES:
        subcommand, options = command_options(service(name)["command"])
        assert subcommand == "run"
        assert set(options) <= known, f"{name}: unknown flags {set(options) - known}"
        assert options["--broker"] == "mqtt://mosquitto:1883"
        targets = {target for _source, target, _mode in volume_mounts(name)}
        assert options["--data-dir"] in targets, f"{name}: the data dir is not a volume"
        device_ids.append(options["--device-id"])
    assert device_ids == list(EDGES)


def test_cloud_command_uses_the_serve_flags() -> None:
    known = cli_options(cloud_app, "serve")
    subcommand, options = command_options(service("cloud")["command"])
    assert subcommand == "serve"
    assert set(options) <= known, f"unknown flags {set(options) - known}"
    assert options["--broker"] == "mqtt://mosquitto:1883"
    assert "@postgres:5432/" in options["--database"]
    assert options["--host"] == "0.0.0.0"
    published = {str(p).rsplit(":", 1)[1] for p in service("cloud")["ports"]}
    assert options["--port"] in published


def test_broker_configuration_is_dev_conf_made_for_a_container() -> None:
    mounts = {target: source for source, target, _mode in volume_mounts("mosquitto")}
    command = service("mosquitto")["command"]
    config_path = command[command.index("-c") + 1]
    assert config_path in mounts, "the configuration file given to -c is not mounted"
    compose_conf = ROOT / mounts[config_path]
    assert compose_conf.is_relative_to(ROOT / "docker"), compose_conf

    ours = dict(s for s in mosquitto_settings(compose_conf) if s[0] in CONTAINER_ONLY_SETTINGS)
    assert ours["listener"] in {"1883", "1883 0.0.0.0"}, "must listen on all interfaces"
    assert any(ours["persistence_location"].startswith(target) for target in mounts), (
        "persistence_location is not on a mounted volume"
    )

    def shared(path: Path) -> list[tuple[str, str]]:
        return sorted(s for s in mosquitto_settings(path) if s[0] not in CONTAINER_ONLY_SETTINGS)

    assert shared(compose_conf) == shared(DEV_CONF), (
        f"{compose_conf.name} and dev.conf differ in more than {sorted(CONTAINER_ONLY_SETTINGS)}"
    )
