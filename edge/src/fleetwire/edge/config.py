"""Agent configuration: command-line options over ``FLEETWIRE_EDGE_*`` variables over a YAML file.

The broker password comes from ``password_file`` or ``FLEETWIRE_EDGE_PASSWORD``, never from the
command line (it would show in ``ps``); it is a :class:`SecretStr` so no ``repr`` or log shows it.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from fleetwire.edge.errors import ConfigError
from fleetwire.protocol.ids import DeviceId

ENV_PREFIX: Final = "FLEETWIRE_EDGE_"
DEFAULT_SESSION_EXPIRY_S: Final = 7 * 24 * 3600


class BrokerEndpoint(BaseModel):
    """Where the broker is, parsed from the ``broker`` URL: host, port and whether to use TLS.

    Only the endpoint: the credentials and TLS files are fields of :class:`AgentConfig`.
    (Not the cloud's ``fleetwire.cloud.mqtt.BrokerAddress``, which carries credentials too.)
    """

    model_config = ConfigDict(frozen=True)
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerEndpoint:
    """Parse ``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        msg = f"broker URL {url!r} must start with mqtt:// or mqtts://"
        raise ValueError(msg)
    if not parts.hostname:
        msg = f"broker URL {url!r} has no host"
        raise ValueError(msg)
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        msg = f"broker URL {url!r} has an invalid port"
        raise ValueError(msg) from exc
    return BrokerEndpoint(host=parts.hostname, port=port, tls=tls)


class AgentConfig(BaseModel):
    """Everything ``fleetwire-edge run`` needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: DeviceId
    broker: str = "mqtt://127.0.0.1:1883"
    data_dir: Path
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    system_model: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Field(ge=60, le=2**32 - 1)] = DEFAULT_SESSION_EXPIRY_S
    max_inflight: Annotated[int, Field(ge=1, le=20)] = 20
    outbox_limit: Annotated[int, Field(ge=100)] = 100_000
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    backoff_initial_s: Annotated[float, Field(gt=0)] = 1.0
    backoff_max_s: Annotated[float, Field(gt=0)] = 60.0
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    journal_retention_days: Annotated[int, Field(ge=30)] = 90
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _check(self) -> "AgentConfig":
        parse_broker_url(self.broker)
        if self.password is not None and self.password_file is not None:
            msg = "give the password either in password_file or in FLEETWIRE_EDGE_PASSWORD"
            raise ValueError(msg)
        if (self.cert_file is None) != (self.key_file is None):
            msg = "cert_file and key_file go together"
            raise ValueError(msg)
        return self

    @property
    def address(self) -> BrokerEndpoint:
        """The parsed broker URL."""
        return parse_broker_url(self.broker)

    def broker_password(self) -> str | None:
        """The password, read from ``password_file`` when one is configured."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"cannot read the password file {self.password_file}: {exc.strerror}"
            raise ConfigError(msg) from exc


_FIELDS: Final = tuple(AgentConfig.model_fields)


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name: environ[ENV_PREFIX + name.upper()]
        for name in _FIELDS
        if ENV_PREFIX + name.upper() in environ
    }


def _from_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read the config file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    except yaml.YAMLError as exc:
        msg = f"config file {path} is not valid YAML: {exc}"
        raise ConfigError(msg) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        msg = f"config file {path} must hold a mapping of option: value"
        raise ConfigError(msg)
    # Accept the command line's spelling (ca-file) as well as the field's (ca_file).
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        if loc == "device_id":
            lines.append(
                "device_id must be 1-64 characters of letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (it is one MQTT topic level)"
            )
        else:
            lines.append(f"{loc}: {err['msg']}")
    return "; ".join(lines)


def load_config(
    options: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Merge defaults < YAML file < environment < ``options`` (None values are ignored)."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_from_file(config_file))
    merged.update(_from_env(os.environ if environ is None else environ))
    merged.update({k: v for k, v in options.items() if v is not None})
    try:
        return AgentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
