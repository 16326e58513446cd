"""The codec: round trips, robustness against any input, size limit, versions and upcasting."""

import copy
import json
from typing import Any, ClassVar, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetwire.protocol import MAX_MESSAGE_BYTES, MESSAGE_TYPES, Codec, decode, encode
from fleetwire.protocol.codec import DEFAULT_CODEC, user_properties
from fleetwire.protocol.commands import DeployCommand, SyncCommand, SyncData
from fleetwire.protocol.envelope import Envelope
from fleetwire.protocol.errors import (
    DecodeError,
    EncodeError,
    MalformedMessage,
    MessageTooLarge,
    SchemaViolation,
    UnknownMessageType,
    UnsupportedVersion,
)
from fleetwire.protocol.events import (
    CommandAccepted,
    ContainerStateData,
    DeviceEvent,
)
from fleetwire.protocol.topics import EventCategory
from protocol.tests.goldens import GOLDEN_TYPES, golden_bytes, golden_json

DEPLOY = "io.fleetwire.command.deploy.v1"
CONTAINER_STATE = "io.fleetwire.event.container.state.v1"


def _payload(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", GOLDEN_TYPES)
def test_round_trip_bytes_and_text(message_type):
    raw = golden_bytes(message_type)
    message = decode(raw)
    assert decode(raw.decode()) == message
    wire = encode(message)
    assert decode(wire) == message
    assert json.loads(wire) == golden_json(message_type)


def test_encode_omits_absent_optionals_and_keeps_required_attributes():
    wire = json.loads(encode(SyncCommand(data=SyncData())))
    assert set(wire) == {"specversion", "id", "source", "type", "time", "datacontenttype", "data"}
    assert wire["data"] == {}


def test_secret_travels_on_the_wire_but_not_in_repr():
    message = decode(golden_bytes(DEPLOY))
    assert isinstance(message, DeployCommand)
    assert "example-password" not in repr(message)
    assert b'"password":"example-password"' in encode(message)


# --- versions, types and attributes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "error"),
    [
        ("io.fleetwire.command.deploy.v2", UnsupportedVersion),
        ("io.fleetwire.command.deploy.v0", UnsupportedVersion),
        ("io.fleetwire.event.inventory.v17", UnsupportedVersion),
        ("io.fleetwire.command.reboot.v1", UnknownMessageType),
        ("io.fleetwire.command.deploy", UnknownMessageType),
        ("com.example.order.created", UnknownMessageType),
        ("", UnknownMessageType),
    ],
)
def test_unknown_type_versus_unsupported_version(message_type, error):
    obj = {**golden_json(DEPLOY), "type": message_type}
    with pytest.raises(error) as info:
        decode(_payload(obj))
    assert type(info.value) is error


def test_unsupported_version_names_the_known_versions():
    obj = {**golden_json(DEPLOY), "type": "io.fleetwire.command.deploy.v2"}
    with pytest.raises(UnsupportedVersion, match=r"io\.fleetwire\.command\.deploy\.v1"):
        decode(_payload(obj))


@pytest.mark.parametrize("value", [None, 1, ["x"], {"a": 1}])
def test_type_must_be_a_string(value):
    with pytest.raises(SchemaViolation, match="type"):
        decode(_payload({**golden_json(DEPLOY), "type": value}))


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type"])
def test_required_cloudevents_attributes(attribute):
    obj = golden_json(DEPLOY)
    del obj[attribute]
    with pytest.raises(SchemaViolation, match=attribute):
        decode(_payload(obj))


def test_unknown_extension_attributes_are_ignored():
    obj = {
        **golden_json(CONTAINER_STATE),
        "partitionkey": "gw-berlin-0042",
        "dataschema": "https://example.com/schema.json",
        "comexampleextension": {"nested": [1, 2, 3]},
    }
    assert decode(_payload(obj)) == decode(golden_bytes(CONTAINER_STATE))


def test_data_is_closed():
    obj = golden_json(CONTAINER_STATE)
    obj["data"]["oom_killed"] = True
    with pytest.raises(SchemaViolation, match=r"data\.oom_killed"):
        decode(_payload(obj))


def test_specversion_must_be_1_0():
    with pytest.raises(SchemaViolation, match="specversion"):
        decode(_payload({**golden_json(DEPLOY), "specversion": "0.3"}))


def test_schema_violation_message_is_short_and_located():
    obj = golden_json(DEPLOY)
    obj["data"]["release"]["containers"][0]["ports"] = ["http"] * 10
    with pytest.raises(SchemaViolation) as info:
        decode(_payload(obj))
    text = str(info.value)
    assert text.startswith(DEPLOY)
    assert "data.release.containers.0.ports.0" in text
    assert "(and 5 more)" in text


def test_decode_as_checks_the_kind():
    raw = golden_bytes(DEPLOY)
    assert isinstance(DEFAULT_CODEC.decode_as(raw, DeployCommand), DeployCommand)
    with pytest.raises(UnknownMessageType, match="not expected here"):
        DEFAULT_CODEC.decode_as(raw, DeviceEvent)


def test_encode_rejects_types_outside_the_protocol():
    codec = Codec(types={DEPLOY: DeployCommand})
    with pytest.raises(EncodeError, match="not part of the protocol"):
        codec.encode(SyncCommand(data=SyncData()))


def test_user_properties_mirror_the_envelope():
    message = decode(golden_bytes(CONTAINER_STATE))
    props = dict(user_properties(message))
    assert props["ce_id"] == message.id
    assert props["ce_type"] == CONTAINER_STATE
    assert props["ce_source"] == "fleetwire://devices/gw-berlin-0042"
    assert props["seq"] == "1047"
    assert props["correlationid"] == message.correlationid


def test_error_codes():
    assert MalformedMessage.code == "malformed"
    assert MessageTooLarge.code == "too_large"
    assert UnknownMessageType.code == "unknown_type"
    assert UnsupportedVersion.code == "unsupported_version"
    assert SchemaViolation.code == "schema_violation"


# --- size limit ----------------------------------------------------------------------------


def _big_deploy(env_bytes: int) -> DeployCommand:
    message = decode(golden_bytes(DEPLOY))
    assert isinstance(message, DeployCommand)
    release = message.data.release
    big = release.containers[0].model_copy(update={"env": {"BLOB": "x" * env_bytes}})
    data = message.data.model_copy(
        update={"release": release.model_copy(update={"containers": [big]})}
    )
    return message.model_copy(update={"data": data})


def test_encode_rejects_messages_over_the_limit():
    assert MAX_MESSAGE_BYTES == 256 * 1024
    encode(_big_deploy(200 * 1024))
    with pytest.raises(EncodeError, match="262144-byte limit"):
        encode(_big_deploy(MAX_MESSAGE_BYTES))


def test_decode_limit_is_inclusive_and_counts_bytes():
    wire = encode(decode(golden_bytes(DEPLOY)))
    exact = wire + b" " * (MAX_MESSAGE_BYTES - len(wire))
    assert len(exact) == MAX_MESSAGE_BYTES
    decode(exact)
    with pytest.raises(MessageTooLarge, match="262145 bytes"):
        decode(exact + b" ")
    # A text payload is measured in UTF-8 bytes, not characters.
    text = wire.decode() + " " * (MAX_MESSAGE_BYTES - len(wire) - 1) + "é"
    with pytest.raises(MessageTooLarge):
        decode(text)


def test_codec_limit_is_configurable():
    small = Codec(max_bytes=100)
    with pytest.raises(MessageTooLarge):
        small.decode(golden_bytes(DEPLOY))
    with pytest.raises(EncodeError):
        small.encode(decode(golden_bytes(DEPLOY)))


# --- upcasting -----------------------------------------------------------------------------


def _deploy_v0_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    # The fake v0 called the release "spec" and had no credentials.
    data = dict(obj["data"])
    data["release"] = data.pop("spec")
    return {**obj, "type": DEPLOY, "data": data}


def _deploy_v0_payload() -> bytes:
    obj = golden_json(DEPLOY)
    data = obj["data"]
    data["spec"] = data.pop("release")
    del data["credentials"]
    return _payload({**obj, "type": "io.fleetwire.command.deploy.v0"})


def test_upcaster_turns_v0_into_v1():
    codec = Codec(upcasters={"io.fleetwire.command.deploy.v0": _deploy_v0_to_v1})
    message = codec.decode(_deploy_v0_payload())
    assert isinstance(message, DeployCommand)
    assert message.type == DEPLOY
    golden = decode(golden_bytes(DEPLOY))
    assert isinstance(golden, DeployCommand)
    assert message.data.release == golden.data.release
    assert message.data.credentials == []
    # Without the upcaster, v0 is a known family in an unsupported version.
    with pytest.raises(UnsupportedVersion):
        decode(_deploy_v0_payload())


class ContainerStateV2Data(ContainerStateData):
    """A fake newer container state with one more field."""

    oom_killed: bool


class ContainerStateChangedV2(DeviceEvent):
    """A fake ``io.fleetwire.event.container.state.v2``."""

    category: ClassVar[EventCategory] = EventCategory.CONTAINER
    type: Literal["io.fleetwire.event.container.state.v2"] = "io.fleetwire.event.container.state.v2"
    data: ContainerStateV2Data


def _state_v0_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    data = dict(obj["data"])
    data["status"] = data.pop("state")  # v0 called it "state"
    return {**obj, "type": CONTAINER_STATE, "data": data}


def _state_v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    data = {**obj["data"], "oom_killed": obj["data"].get("exit_code") == 137}
    return {**obj, "type": "io.fleetwire.event.container.state.v2", "data": data}


def test_upcasting_chain_hands_handlers_only_the_newest_version():
    types = {t: c for t, c in MESSAGE_TYPES.items() if t != CONTAINER_STATE}
    types["io.fleetwire.event.container.state.v2"] = ContainerStateChangedV2
    codec = Codec(
        types=types,
        upcasters={
            "io.fleetwire.event.container.state.v0": _state_v0_to_v1,
            CONTAINER_STATE: _state_v1_to_v2,
        },
    )
    v1 = golden_json(CONTAINER_STATE)
    v0 = copy.deepcopy(v1)
    v0["type"] = "io.fleetwire.event.container.state.v0"
    v0["data"]["state"] = v0["data"].pop("status")
    seen = [codec.decode(_payload(v0)), codec.decode(_payload(v1))]
    for message in seen:
        assert isinstance(message, ContainerStateChangedV2)
        assert message.data.oom_killed is False
        assert message.data.status == "running"
        assert message.id == v1["id"]
    assert seen[0] == seen[1]
    # Other types are untouched by these upcasters.
    assert isinstance(codec.decode(golden_bytes(GOLDEN_TYPES[7])), CommandAccepted)
    with pytest.raises(UnsupportedVersion):
        codec.decode(_payload({**v1, "type": "io.fleetwire.event.container.state.v3"}))


def test_cyclic_upcasters_are_a_schema_violation():
    codec = Codec(
        upcasters={
            "io.fleetwire.command.deploy.v0": lambda o: {**o, "type": "x.v9"},
            "x.v9": lambda o: {**o, "type": "io.fleetwire.command.deploy.v0"},
        }
    )
    with pytest.raises(SchemaViolation, match="did not terminate"):
        codec.decode(_deploy_v0_payload())


@pytest.mark.parametrize(
    "upcaster",
    [
        lambda o: o["missing"],
        lambda o: int("x"),
        lambda o: None,
        lambda o: ["not", "an", "object"],
        lambda o: {**o, "type": None},
    ],
)
def test_failing_upcasters_are_a_schema_violation(upcaster):
    codec = Codec(upcasters={"io.fleetwire.command.deploy.v0": upcaster})
    with pytest.raises(SchemaViolation):
        codec.decode(_deploy_v0_payload())


def test_upcasters_with_odd_names_do_not_break_decoding():
    codec = Codec(upcasters={"legacy-deploy": _deploy_v0_to_v1})
    with pytest.raises(UnknownMessageType):
        codec.decode(_payload({**golden_json(DEPLOY), "type": "io.fleetwire.command.reboot.v1"}))


# --- robustness: any input, only DecodeError --------------------------------------------------


def _check(payload: bytes | str) -> None:
    """Decode must return a message or raise a DecodeError; a message must re-encode."""
    try:
        message = decode(payload)
    except DecodeError:
        return
    assert isinstance(message, Envelope)
    assert decode(encode(message)) == message


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"\xef\xbb\xbf{}",
        b"null",
        b"[]",
        b'"text"',
        b"{}",
        b'{"type": NaN}',
        b'{"type": "io.fleetwire.command.sync.v1", "data": {"reason": Infinity}}',
        b'{"type": "io.fleetwire.command.sync.v1", "seq": 1' + b"0" * 5000 + b"}",
        b'{"type": "io.fleetwire.command.sync.v1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"type": "io.fleetwire.command.sync.v1", "data": ' + b'{"a":' * 50_000 + b"}",
        b'{"type": "\\ud800.v1"}',
    ],
)
def test_pathological_payloads(payload):
    with pytest.raises(DecodeError):
        decode(payload)


@settings(max_examples=150)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_decode_errors(payload):
    _check(payload)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_NEST = "__fleetwire_nest__"


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out += _paths(value, (*prefix, index))
    return out


def _container(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        obj = obj[key]
    return obj


def _mutate_tree(draw: st.DrawFn, obj: Any) -> int:
    """Damage ``obj`` in place (one to three edits); the nesting depth asked for, or 0."""
    nest_depth = 0
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _container(obj, path)
        op = draw(st.sampled_from(["drop", "retype", "huge", "nest", "wrap"]))
        if op == "drop":
            del parent[path[-1]]
        elif op == "retype":
            parent[path[-1]] = draw(_json_values)
        elif op == "huge":
            parent[path[-1]] = "x" * draw(st.sampled_from([300, 5000, 200_000, 300_000]))
        elif op == "nest" and not nest_depth:
            nest_depth = draw(st.sampled_from([2, 50, 900, 5000, 50_000]))
            parent[path[-1]] = _NEST
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return nest_depth


def _damage_bytes(draw: st.DrawFn, raw: bytearray) -> None:
    # Byte damage in half of the cases only: it nearly always ends in MalformedMessage.
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        if not raw:
            break
        byte_op = draw(st.sampled_from(["flip", "truncate", "insert"]))
        at = draw(st.integers(0, len(raw) - 1))
        if byte_op == "flip":
            raw[at] ^= draw(st.integers(1, 255))
        elif byte_op == "truncate":
            del raw[at:]
        else:
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    obj = golden_json(draw(st.sampled_from(GOLDEN_TYPES)))
    nest_depth = _mutate_tree(draw, obj)
    text = json.dumps(obj)
    if nest_depth:
        text = text.replace(json.dumps(_NEST), "[" * nest_depth + "1" + "]" * nest_depth, 1)
    raw = bytearray(text.encode())
    _damage_bytes(draw, raw)
    return bytes(raw)


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(mutated_payloads())
def test_mutated_goldens_raise_only_decode_errors(payload):
    _check(payload)


@settings(max_examples=100)
@given(message_type=st.sampled_from(GOLDEN_TYPES), text=st.text(max_size=64))
def test_any_string_in_an_optional_field_is_safe(message_type, text):
    obj = golden_json(message_type)
    obj["subject"] = text
    obj["tracestate"] = text
    _check(_payload(obj))
