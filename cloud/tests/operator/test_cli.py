"""The operator CLI against a real API server: plain answers, plain errors."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cloud.tests.support import make_settings
from fleetwire.cloud.cli import app
from fleetwire.cloud.serve import CloudServices

EXAMPLES = Path(__file__).parents[3] / "examples" / "demo"
TOKEN = "operator-cli-test-token-0123456789"


@pytest.fixture
def api_url(database_url: str) -> Iterator[str]:
    settings = make_settings(database_url, api_port=0, bootstrap_admin_token=SecretStr(TOKEN))
    services = CloudServices(settings, relay=False, projector=False)
    services.start()
    try:
        yield services.api_url
    finally:
        services.stop()


def cli(api_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--api-url", api_url, "--token", TOKEN], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.output


def test_release_create_list_and_deploy_errors(api_url: str) -> None:
    code, out = cli(api_url, "release", "create", str(EXAMPLES / "demo-1.0.0.yaml"))
    assert code == 0, out
    assert "release demo 1.0.0 created" in out

    code, out = cli(api_url, "release", "create", str(EXAMPLES / "demo-1.0.0.yaml"))
    assert code == 1
    assert out.startswith("error: 409")

    code, out = cli(api_url, "release", "list", "demo")
    assert code == 0
    assert "1.0.0" in out

    code, out = cli(api_url, "deploy", "demo", "1.0.0", "--device", "nowhere")
    assert code == 1
    assert "error: 4" in out
    assert "nowhere" in out
    assert "Traceback" not in out

    code, out = cli(api_url, "register", "rpi-7", "--model", "rpi4", "--tag", "lab")
    assert code == 0, out
    code, out = cli(api_url, "devices")
    assert code == 0
    assert "rpi-7" in out
    assert "rpi4" in out
    code, out = cli(api_url, "register", "bad/id")
    assert code == 1
    assert "error: 422" in out
    code, out = cli(api_url, "command", "no-such-command")
    assert code == 1
    assert "404" in out


def test_invalid_release_file_names_the_field(api_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("application: demo\nversion: 1.0\nservices: {web: {image: 'Not An Image'}}\n")
    code, out = cli(api_url, "release", "create", str(bad))
    assert code == 1
    assert "version" in out
    assert "containers.0.image" in out


def test_wrong_token_and_unreachable_api_are_plain_errors(api_url: str) -> None:
    result = CliRunner().invoke(app, ["devices", "--api-url", api_url, "--token", "wrong"])
    assert result.exit_code == 1
    assert "401" in result.output
    result = CliRunner().invoke(app, ["devices", "--api-url", "http://127.0.0.1:9", "--token", "x"])
    assert result.exit_code == 1
    assert "cannot reach the API" in result.output
