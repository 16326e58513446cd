"""JSON Schema and AsyncAPI export: not stale, valid, complete, and in step with the models."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fleetwire.protocol import MESSAGE_TYPES, decode
from fleetwire.protocol.asyncapi import asyncapi_document
from fleetwire.protocol.envelope import REQUIRED_ATTRIBUTES
from fleetwire.protocol.events import PresenceDeath
from fleetwire.protocol.examples import examples
from fleetwire.protocol.export import ASYNCAPI_FILE, SCHEMA_DIR, export_files
from fleetwire.protocol.release import ReleaseSpec
from fleetwire.protocol.schema import RELEASE_SPEC, json_schemas
from fleetwire.protocol.topics import COMMANDS, EVENTS, PRESENCE, EventCategory
from protocol.tests.goldens import GOLDEN_TYPES, golden_json

DOCS = Path(__file__).resolve().parents[2] / "docs"
VENDORED = Path(__file__).parent / "vendor" / "asyncapi" / "3.0.0.json"
REGENERATE = "run `uv run fleetwire protocol export` and commit docs/"


@pytest.fixture(scope="module")
def files():
    return export_files()


@pytest.fixture(scope="module")
def document():
    return asyncapi_document()


@pytest.fixture(scope="module")
def asyncapi_validator():
    schema = json.loads(VENDORED.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


# --- committed files ----------------------------------------------------------------------


def test_committed_files_are_not_stale(files):
    stale = [rel for rel, text in files.items() if not (DOCS / rel).is_file()]
    stale += [
        rel
        for rel, text in files.items()
        if (DOCS / rel).is_file() and (DOCS / rel).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale generated files {stale}: {REGENERATE}"


def test_no_leftover_schema_files(files):
    committed = {p.relative_to(DOCS).as_posix() for p in (DOCS / SCHEMA_DIR).glob("*.json")}
    assert committed == {rel for rel in files if rel.startswith(f"{SCHEMA_DIR}/")}, REGENERATE


def test_export_is_deterministic(files):
    assert export_files() == files
    for rel, text in files.items():
        assert text.endswith("\n"), rel
        assert not text.endswith("\n\n"), rel
    for rel in files:
        if rel.endswith(".json"):
            assert (
                files[rel]
                == json.dumps(json.loads(files[rel]), indent=2, sort_keys=True, ensure_ascii=False)
                + "\n"
            )


def test_export_paths(files):
    assert ASYNCAPI_FILE in files
    assert f"{SCHEMA_DIR}/{RELEASE_SPEC}.json" in files
    assert f"{SCHEMA_DIR}/io.fleetwire.command.deploy.v1.json" in files


# --- JSON Schema --------------------------------------------------------------------------


def test_every_message_type_has_a_json_schema():
    schemas = json_schemas()
    assert set(schemas) == {*MESSAGE_TYPES, RELEASE_SPEC}
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"] == (name if name != RELEASE_SPEC else schema["title"])


def test_envelope_schemas_require_cloudevents_attributes():
    for message_type, schema in json_schemas().items():
        if message_type != RELEASE_SPEC:
            assert set(REQUIRED_ATTRIBUTES) | {"data"} <= set(schema["required"])
            assert schema["properties"]["type"]["const"] == message_type


def test_secret_is_a_write_only_string():
    schema = json_schemas()["io.fleetwire.command.deploy.v1"]
    password = schema["$defs"]["RegistryCredential"]["properties"]["password"]
    assert password["type"] == "string"
    assert password["writeOnly"] is True


@pytest.mark.parametrize("message_type", GOLDEN_TYPES)
def test_golden_payloads_validate_against_their_schema(message_type):
    # Catches drift between the models and the published schema.
    schema = json_schemas()[message_type]
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [
        f"{e.json_path}: {e.message}" for e in validator.iter_errors(golden_json(message_type))
    ]
    assert not errors


def test_release_spec_schema_accepts_the_example_release():
    release = examples()["io.fleetwire.command.deploy.v1"].model_dump(mode="json")["data"][
        "release"
    ]
    jsonschema.validate(release, json_schemas()[RELEASE_SPEC], cls=jsonschema.Draft202012Validator)
    ReleaseSpec.model_validate(release)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda o: o["data"].update(unexpected=1), "data"),
        (lambda o: o.pop("id"), "$"),
        (lambda o: o.update(type="io.fleetwire.command.stop.v1"), "type"),
        (lambda o: o["data"]["release"].update(version=3), "version"),
    ],
)
def test_schema_rejects_what_the_decoder_rejects(change, where):
    obj = golden_json("io.fleetwire.command.deploy.v1")
    change(obj)
    schema = json_schemas()["io.fleetwire.command.deploy.v1"]
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(obj))
    assert errors
    assert any(where in e.json_path for e in errors)


# --- AsyncAPI -----------------------------------------------------------------------------


def test_asyncapi_document_is_valid(document, asyncapi_validator):
    errors = [f"{e.json_path}: {e.message}" for e in asyncapi_validator.iter_errors(document)]
    assert not errors


def test_committed_asyncapi_yaml_is_valid_and_matches(files, document, asyncapi_validator):
    loaded = yaml.safe_load((DOCS / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    assert loaded == yaml.safe_load(files[ASYNCAPI_FILE]) == document
    asyncapi_validator.validate(loaded)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["operations"]["sendCommand"].update(action="publish"),
        lambda d: d["operations"]["sendCommand"]["bindings"]["mqtt"].update(qos=3),
        lambda d: d["servers"]["production"]["bindings"]["mqtt"].update(willTopic="x"),
        lambda d: d["channels"]["events"]["parameters"]["category"].update(enum="command"),
        lambda d: d["components"]["schemas"]["DeployCommand"].update(type=5),
        lambda d: d.pop("info"),
    ],
)
def test_validator_catches_a_broken_document(document, asyncapi_validator, breakage):
    # Proves the vendored schema's internal references resolve and are enforced.
    broken = json.loads(json.dumps(document))
    breakage(broken)
    assert not asyncapi_validator.is_valid(broken)


def test_every_message_type_is_in_the_asyncapi_document(document):
    messages = document["components"]["messages"]
    assert set(messages) == set(MESSAGE_TYPES)
    in_channels = [t for ch in document["channels"].values() for t in ch["messages"]]
    assert sorted(in_channels) == sorted(MESSAGE_TYPES)
    in_operations = [
        ref["$ref"].rsplit("/", 1)[1]
        for op in document["operations"].values()
        for ref in op["messages"]
    ]
    assert sorted(in_operations) == sorted(MESSAGE_TYPES)
    for message_type, message in messages.items():
        assert message["title"] == message_type
        assert message["contentType"] == "application/cloudevents+json"
        schema_name = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert schema_name == MESSAGE_TYPES[message_type].__name__
        assert schema_name in document["components"]["schemas"]


def test_channels_follow_the_topic_templates(document):
    channels = document["channels"]
    assert channels["commands"]["address"] == COMMANDS.template
    assert channels["events"]["address"] == EVENTS.template
    assert channels["presence"]["address"] == PRESENCE.template
    for channel in channels.values():
        names = {p[1:-1] for p in channel["address"].split("/") if p.startswith("{")}
        assert set(channel["parameters"]) == names
    assert channels["events"]["parameters"]["category"]["enum"] == [c.value for c in EventCategory]


def test_mqtt_bindings(document):
    operations = document["operations"]
    assert {op["bindings"]["mqtt"]["qos"] for op in operations.values()} == {1}
    assert operations["receivePresence"]["bindings"]["mqtt"]["retain"] is True
    assert operations["sendCommand"]["bindings"]["mqtt"]["retain"] is False
    assert operations["sendCommand"]["action"] == "send"
    server = document["servers"]["production"]["bindings"]["mqtt"]
    assert server["cleanSession"] is False
    assert server["sessionExpiryInterval"] > 0
    will = server["lastWill"]
    assert (will["topic"], will["qos"], will["retain"]) == (PRESENCE.template, 1, True)
    assert isinstance(decode(will["message"]), PresenceDeath)


def test_correlation_ids_point_into_the_payload(document):
    ids = document["components"]["correlationIds"]
    assert ids["answeredCommand"]["location"] == "$message.payload#/correlationid"
    assert ids["commandId"]["location"] == "$message.payload#/id"


def _embedded_validator(document: dict[str, Any], schema_name: str) -> Any:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.mark.parametrize("message_type", GOLDEN_TYPES)
def test_golden_payloads_validate_against_the_asyncapi_payload(document, message_type):
    message = document["components"]["messages"][message_type]
    validator = _embedded_validator(document, message["payload"]["$ref"].rsplit("/", 1)[1])
    assert not list(validator.iter_errors(golden_json(message_type)))
    for example in message["examples"]:
        assert not list(validator.iter_errors(example["payload"]))
        assert decode(json.dumps(example["payload"])).type == message_type
