"""Repository-wide pytest configuration.

Registers the shared fixture layer in ``tests/fixtures/`` for every test in the workspace
(protocol, edge, cloud and the top-level ``tests/``). See docs/brokers.md for what each fixture
starts and how it cleans up.
"""

import os

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


def pytest_configure(config: pytest.Config) -> None:
    # amqtt 0.12.1's TopicAccessControlListPlugin warns that `acl` is deprecated in favour of
    # `subscribe_acl`, but its strict config loader rejects `subscribe_acl`: there is no way to
    # configure a subscribe ACL without the warning, and filterwarnings=error would turn it
    # into a PluginInitError inside the broker.
    config.addinivalue_line(
        "filterwarnings", "ignore:The 'acl' option is deprecated:DeprecationWarning"
    )
