"""Repository-wide pytest configuration.

Registers the shared fixture layer in ``tests/fixtures/`` for every test in the workspace
(protocol, edge, cloud and the top-level ``tests/``). See docs/brokers.md for what each fixture
starts and how it cleans up.
"""

import os
from typing import Final

import pytest

# The Ryuk reaper image cannot be pulled here (no registry): our fixtures clean up themselves.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

pytest_plugins = [
    "tests.fixtures.mosquitto",
    "tests.fixtures.amqtt",
    "tests.fixtures.postgres",
    "tests.fixtures.docker",
]


# A test that uses one of these fixtures (directly or through another fixture) needs that service;
# it gets the marker, so `make unit` can leave out everything that starts a real service.
SERVICE_FIXTURES: Final = {
    "docker_client": "docker",
    "mosquitto_factory": "mosquitto",
    "amqtt_factory": "amqtt",
    "postgres_server": "postgres",
    "database_url": "database",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = SERVICE_FIXTURES.get(fixture)
            if marker is not None:
                item.add_marker(marker)


def pytest_configure(config: pytest.Config) -> None:
    # amqtt 0.12.1's TopicAccessControlListPlugin warns that `acl` is deprecated in favour of
    # `subscribe_acl`, but its strict config loader rejects `subscribe_acl`: there is no way to
    # configure a subscribe ACL without the warning, and filterwarnings=error would turn it
    # into a PluginInitError inside the broker.
    config.addinivalue_line(
        "filterwarnings", "ignore:The 'acl' option is deprecated:DeprecationWarning"
    )
