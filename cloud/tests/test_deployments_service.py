"""The deployments service raises the cloud's errors, not HTTP ones, and stores in one commit."""

from dataclasses import fields
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from cloud.tests.support import birth, dep_state, feed, register, seed_catalog
from fleetwire.cloud import deployments as service
from fleetwire.cloud.actions import ACTIONS, START, STOP, UPGRADE
from fleetwire.cloud.api.schemas import ActionRequest
from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.db.tables import Command, Deployment, Outbox
from fleetwire.cloud.errors import ActionNotAllowed, Conflict, NotAnnounced, NotFound, Unprocessable
from fleetwire.protocol.envelope import FIRST_SEQ

STAMP = service.Stamp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", timedelta(days=1))


@pytest.fixture
def deployed(api, engine, settings):
    """thermo 1.0.0 deployed to dev-1, reported running; returns (deployment id, release ids)."""
    releases = seed_catalog(api)
    register(api, "dev-1")
    feed(engine, settings, birth("dev-1"))
    with Session(engine) as session:
        (issued,) = service.create_deployments(
            session,
            release_id=releases[0],
            application=None,
            version=None,
            device_ids=["dev-1", "dev-1"],
            health_timeout_s=30.0,
            stamp=STAMP,
        )
    dep_id = issued.deployment_id
    assert dep_id is not None
    feed(engine, settings, dep_state("dev-1", FIRST_SEQ, dep_id, "running"))
    return dep_id, releases


def test_deploy_stores_deployment_command_and_outbox_row(engine, deployed):
    dep_id, _ = deployed
    with Session(engine) as session:
        command = session.exec(select(Command)).one()
        outbox = session.exec(select(Outbox)).one()
        row = session.get(Deployment, dep_id)
    assert (command.action, command.status) == ("deploy", CommandStatus.PENDING)
    assert outbox.payload["data"]["health_timeout_s"] == 30.0
    assert outbox.payload["traceparent"] == STAMP.traceparent
    assert row is not None
    assert row.desired_state == "running"


def test_an_unknown_release_is_unprocessable(engine):
    with Session(engine) as session, pytest.raises(Unprocessable, match="does not exist"):
        service.create_deployments(
            session,
            release_id="nope",
            application=None,
            version=None,
            device_ids=["dev-1"],
            health_timeout_s=30.0,
            stamp=STAMP,
        )


def test_actions_raise_domain_errors(engine, deployed):
    dep_id, releases = deployed
    none = service.ActionOptions()
    with Session(engine, expire_on_commit=False) as session:
        with pytest.raises(NotFound):
            service.act(session, "nope", STOP, none, stamp=STAMP)
        with pytest.raises(ActionNotAllowed, match="cannot start a deployment that is running"):
            service.act(session, dep_id, START, none, stamp=STAMP)
        with pytest.raises(Unprocessable, match="upgrade needs a target"):
            service.act(session, dep_id, UPGRADE, none, stamp=STAMP)
        with pytest.raises(Conflict, match=r"already runs release 1\.0\.0"):
            service.act(
                session, dep_id, UPGRADE, service.ActionOptions(version="1.0.0"), stamp=STAMP
            )
        issued = service.act(
            session, dep_id, UPGRADE, service.ActionOptions(release_id=releases[1]), stamp=STAMP
        )
        command = session.get(Command, issued.command_id)
        assert command is not None
        assert command.action == "upgrade"
        deleted = service.act(
            session,
            dep_id,
            ACTIONS["delete"],
            service.ActionOptions(purge_volumes=True),
            stamp=STAMP,
        )
        outbox = session.exec(select(Outbox).where(Outbox.command_id == deleted.command_id)).one()
        assert outbox.payload["data"] == {"deployment_id": dep_id, "purge_volumes": True}
        with pytest.raises(ActionNotAllowed, match="is deleted"):
            service.act(session, dep_id, STOP, none, stamp=STAMP)


def test_a_type_the_device_did_not_announce_is_refused(engine, settings, deployed):
    dep_id, _ = deployed
    feed(engine, settings, birth("dev-1", types=["io.fleetwire.command.deploy.v1"]))
    with Session(engine) as session, pytest.raises(NotAnnounced, match=r"command\.stop\.v1"):
        service.act(session, dep_id, STOP, service.ActionOptions(), stamp=STAMP)


def test_action_options_mirror_the_api_request():
    """The route passes an ``ActionRequest`` on as ``ActionOptions``: their fields must match."""
    assert set(ActionRequest.model_fields) == {f.name for f in fields(service.ActionOptions)}
    assert ActionRequest().model_dump() == vars(service.ActionOptions())
