"""Topics: build, filter, shared filter and parse."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetwire.protocol.errors import TopicError
from fleetwire.protocol.ids import DEVICE_ID_PATTERN, is_valid_device_id
from fleetwire.protocol.topics import (
    COMMANDS,
    EVENTS,
    PRESENCE,
    EventCategory,
    command_topic,
    event_topic,
    presence_topic,
)

device_ids = st.from_regex(DEVICE_ID_PATTERN, fullmatch=True)


def test_build_each_topic():
    assert command_topic("gw-1") == "fleetwire/v1/devices/gw-1/commands"
    assert event_topic("gw-1", EventCategory.DEPLOYMENT) == (
        "fleetwire/v1/devices/gw-1/events/deployment"
    )
    assert event_topic("gw-1", "inventory") == "fleetwire/v1/devices/gw-1/events/inventory"
    assert presence_topic("gw-1") == "fleetwire/v1/devices/gw-1/presence"


def test_filters():
    assert COMMANDS.filter() == "fleetwire/v1/devices/+/commands"
    assert EVENTS.filter() == "fleetwire/v1/devices/+/events/+"
    assert EVENTS.filter(device_id="gw-1") == "fleetwire/v1/devices/gw-1/events/+"
    assert EVENTS.filter(category="container") == "fleetwire/v1/devices/+/events/container"
    assert PRESENCE.filter() == "fleetwire/v1/devices/+/presence"


def test_shared_filter():
    assert EVENTS.shared_filter("projector") == "$share/projector/fleetwire/v1/devices/+/events/+"
    assert PRESENCE.shared_filter("p", device_id="gw-1") == (
        "$share/p/fleetwire/v1/devices/gw-1/presence"
    )


@pytest.mark.parametrize("group", ["", "a/b", "+", "#", "g+"])
def test_shared_filter_rejects_bad_groups(group):
    with pytest.raises(TopicError):
        EVENTS.shared_filter(group)


def test_parse():
    assert EVENTS.parse("fleetwire/v1/devices/gw-1/events/command") == {
        "device_id": "gw-1",
        "category": "command",
    }
    assert COMMANDS.parse("fleetwire/v1/devices/a.b_c-d/commands") == {"device_id": "a.b_c-d"}


@pytest.mark.parametrize(
    ("template", "topic"),
    [
        (COMMANDS, "fleetwire/v1/devices/gw-1/events/command"),
        (COMMANDS, "fleetwire/v2/devices/gw-1/commands"),
        (COMMANDS, "fleetwire/v1/devices//commands"),
        (COMMANDS, "fleetwire/v1/devices/+/commands"),
        (COMMANDS, "fleetwire/v1/devices/#/commands"),
        (COMMANDS, "/fleetwire/v1/devices/gw-1/commands"),
        (COMMANDS, "fleetwire/v1/devices/gw-1/commands/"),
        (EVENTS, "fleetwire/v1/devices/gw-1/events/unknown"),
        (EVENTS, "fleetwire/v1/devices/gw-1/events"),
        (PRESENCE, "fleetwire/v1/devices/-gw/presence"),
    ],
)
def test_parse_rejects(template, topic):
    assert not template.matches(topic)
    with pytest.raises(TopicError):
        template.parse(topic)


@pytest.mark.parametrize(
    "device_id",
    ["", "a/b", "+", "#", "gw+1", "gw#1", "-gw", ".gw", "a" * 65, "gw 1", "gw\x00", "gw\n"],
)
def test_invalid_device_ids_are_rejected(device_id):
    assert not is_valid_device_id(device_id)
    for build in (command_topic, presence_topic):
        with pytest.raises(TopicError):
            build(device_id)
    with pytest.raises(TopicError):
        event_topic(device_id, EventCategory.COMMAND)
    with pytest.raises(TopicError):
        EVENTS.filter(device_id=device_id)


def test_unknown_category_is_rejected():
    with pytest.raises(TopicError):
        event_topic("gw-1", "logs")


def test_parameters_are_checked():
    with pytest.raises(TopicError, match="missing"):
        EVENTS.build(device_id="gw-1")
    with pytest.raises(TopicError, match="unexpected"):
        COMMANDS.build(device_id="gw-1", category="command")
    with pytest.raises(TopicError, match="unexpected"):
        COMMANDS.filter(tenant="x")


@settings(max_examples=60)
@given(device_id=device_ids, category=st.sampled_from(EventCategory))
def test_round_trip_valid_device_ids(device_id, category):
    assert is_valid_device_id(device_id)
    topic = event_topic(device_id, category)
    assert EVENTS.parse(topic) == {"device_id": device_id, "category": category.value}
    assert COMMANDS.parse(command_topic(device_id)) == {"device_id": device_id}
    assert PRESENCE.parse(presence_topic(device_id)) == {"device_id": device_id}
    # A topic of one template never parses as another.
    assert not COMMANDS.matches(topic)
    assert not EVENTS.matches(presence_topic(device_id))


@settings(max_examples=60)
@given(device_id=device_ids)
def test_device_ids_fill_one_topic_level(device_id):
    assert not set(device_id) & set("/+#")
    assert len(command_topic(device_id).split("/")) == len(COMMANDS.levels)


@pytest.mark.parametrize("reserved", ["fleetwire-cloud", "fleetwire-integrator", "fleetwire-x"])
def test_service_identities_are_not_device_ids(reserved: str) -> None:
    # Broker ACL pattern rules apply to every username: a device named like a service would
    # get the service's topics, so the prefix is reserved.
    assert not is_valid_device_id(reserved)
    with pytest.raises(TopicError):
        command_topic(reserved)
