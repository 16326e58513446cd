"""Settings refuse placeholder secrets outside development."""

import pytest
from pydantic import SecretStr, ValidationError

from fleetwire.cloud.settings import Settings


def test_placeholders_are_fine_in_development():
    assert Settings(environment="development").secret_key.get_secret_value() == "changethis"


@pytest.mark.parametrize("env", ["test", "production"])
def test_placeholders_are_refused_elsewhere(env):
    with pytest.raises(ValidationError, match="secret_key holds a placeholder"):
        Settings(environment=env)
    with pytest.raises(ValidationError, match="bootstrap_admin_token"):
        Settings(
            environment=env,
            secret_key=SecretStr("a-real-key-xyz"),
            bootstrap_admin_token=SecretStr("changethis"),
        )
    assert Settings(environment=env, secret_key=SecretStr("a-real-key-xyz")).environment == env


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("FLEETWIRE_BROKER_URL", "mqtts://broker.example.com")
    s = Settings()
    assert (s.broker_host, s.broker_port, s.broker_tls) == ("broker.example.com", 8883, True)
    with pytest.raises(ValidationError, match="broker_url"):
        Settings(broker_url="http://x")
