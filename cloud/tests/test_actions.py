"""The action table: pure checks, no database or broker."""

import subprocess
import sys

import pytest

from fleetwire.cloud.actions import (
    ACTION_OF_TYPE,
    ACTIONS,
    DELETE,
    DEPLOY,
    DEPLOYMENT_ACTIONS,
    START,
    STOP,
    SYNC,
    UPGRADE,
    Target,
)
from fleetwire.protocol.commands import DeleteData, DeploymentCommandData, UpgradeData
from fleetwire.protocol.events import DeploymentState
from fleetwire.protocol.registry import COMMAND_TYPES

S = DeploymentState


def test_every_protocol_command_has_exactly_one_action():
    assert sorted(ACTION_OF_TYPE) == sorted(COMMAND_TYPES)
    assert ACTION_OF_TYPE["io.fleetwire.command.stop.v1"] == "stop"


def test_deployment_actions_are_the_api_path_names_in_order():
    assert [a.name for a in DEPLOYMENT_ACTIONS] == [
        "start",
        "stop",
        "upgrade",
        "redeploy",
        "delete",
    ]
    assert DEPLOY.target is Target.NEW_DEPLOYMENT
    assert SYNC.target is Target.DEVICE


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (START, {S.STOPPED, S.ERROR, S.ROLLED_BACK}),
        (
            STOP,
            {
                S.PENDING,
                S.PULLING,
                S.CREATING,
                S.STARTING,
                S.RUNNING,
                S.UPGRADING,
                S.ERROR,
                S.ROLLED_BACK,
            },
        ),
        (UPGRADE, {S.RUNNING, S.STOPPED, S.ERROR, S.ROLLED_BACK}),
        (ACTIONS["redeploy"], {S.RUNNING, S.STOPPED, S.ERROR, S.ROLLED_BACK}),
        (DELETE, set(S) - {S.DELETED}),
    ],
)
def test_allowed_states_are_those_docs_cloud_md_lists(action, allowed):
    assert action.allowed_from == allowed
    assert all(action.allows(str(s)) for s in allowed)
    assert not any(action.allows(str(s)) for s in set(S) - allowed)


def test_desired_and_settled_states():
    desired = {a.name: a.desired_state for a in ACTIONS.values()}
    assert desired == {
        "deploy": "running",
        "start": "running",
        "stop": "stopped",
        "upgrade": "running",
        "redeploy": "running",
        "delete": "deleted",
        "sync": None,
    }
    assert {a.name: a.settled_state for a in ACTIONS.values()} == desired


def test_data_model_and_release_come_from_the_command():
    assert UPGRADE.data is UpgradeData
    assert DELETE.data is DeleteData
    assert START.data is DeploymentCommandData
    assert {a.name for a in ACTIONS.values() if a.needs_release} == {"deploy", "upgrade"}


def test_the_table_loads_without_the_database_or_the_api():
    """The operator CLI reads the table; it must stay import-light."""
    code = (
        "import sys, fleetwire.cloud.actions, fleetwire.cloud.operator.progress; "
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'sqlmodel') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
