"""Configuration of the cloud services: one :class:`Settings`, read from ``FLEETWIRE_*``."""

from datetime import timedelta
from typing import Literal, Self
from urllib.parse import urlsplit

from paho.mqtt.enums import MQTTProtocolVersion
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "changeme", "secret"})
"""Values a secret may hold in development only."""


class Settings(BaseSettings):
    """Everything the API, the relay and the projector need; environment variables win."""

    model_config = SettingsConfigDict(env_prefix="FLEETWIRE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///fleetwire.db"
    broker_url: str = "mqtt://127.0.0.1:1883"
    broker_username: str | None = None
    broker_password: SecretStr | None = None
    client_id: str = Field(default="fleetwire-cloud", pattern=r"^[A-Za-z0-9._-]{1,40}$")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    bootstrap_admin_token: SecretStr | None = Field(
        default=None,
        description="Admin token created at startup when no admin token exists yet; when unset, "
        "one is generated and printed once.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr("changethis"),
        description="Key that encrypts image-credential secrets at rest (Fernet).",
    )

    command_ttl: timedelta = timedelta(days=7)
    relay_poll_interval_s: float = Field(default=1.0, gt=0)
    relay_batch: int = Field(default=200, ge=1)
    relay_publish_timeout_s: float = Field(default=10.0, gt=0)
    relay_backoff_max_s: float = Field(default=30.0, gt=0)
    projector_share_group: str = Field(default="fleetwire-projector", pattern=r"^[^/+#]+$")
    projector_batch_max: int = Field(default=5000, ge=1)
    projector_worker_process: bool = Field(
        default=False,
        description="Decode, project and store in a child process, so that receiving (paho) and "
        "projecting use two cores; roughly doubles one projector's throughput.",
    )
    gap_timeout_s: float = Field(default=10.0, gt=0)
    mqtt_protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto",
        description="auto asks for MQTT 5 and falls back to 3.1.1 when the broker refuses it.",
    )
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    mqtt_receive_maximum: int = Field(default=1000, ge=1, le=65535)
    sse_poll_interval_s: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.environment == "development":
            return self
        for name in ("secret_key", "bootstrap_admin_token"):
            value: SecretStr | None = getattr(self, name)
            if value is not None and value.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{name} holds a placeholder value; set FLEETWIRE_{name.upper()} to a real "
                    f"secret outside development"
                )
        return self

    @model_validator(mode="after")
    def _check_broker_url(self) -> Self:
        parts = urlsplit(self.broker_url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"broker_url {self.broker_url!r} must look like mqtt://host[:port]")
        return self

    @property
    def mqtt_protocols(self) -> tuple[MQTTProtocolVersion, ...]:
        """The MQTT versions to try, in order."""
        v5, v311 = MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311
        return {"auto": (v5, v311), "5": (v5,), "3.1.1": (v311,)}[self.mqtt_protocol]

    @property
    def broker_host(self) -> str:
        """Host part of ``broker_url``."""
        return urlsplit(self.broker_url).hostname or "127.0.0.1"

    @property
    def broker_port(self) -> int:
        """Port of ``broker_url`` (1883, or 8883 for ``mqtts``)."""
        parts = urlsplit(self.broker_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def broker_tls(self) -> bool:
        """True for ``mqtts://``."""
        return urlsplit(self.broker_url).scheme == "mqtts"
