"""JSON Schema of every message type, and the files ``fleetwire protocol export`` writes.

Schemas are pydantic's, in validation mode (what a decoder accepts), JSON Schema draft 2020-12.
Checks that pydantic runs in Python (image references, port and mount syntax, cross references
inside a release) are not expressible here: a payload valid against its schema can still be
rejected by the decoder, never the other way round. Everything here is pure: no I/O.
"""

import inspect
import json
import math
import re
from collections.abc import Iterable
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fleetwire.protocol.envelope import REQUIRED_ATTRIBUTES, Envelope
from fleetwire.protocol.registry import MESSAGE_TYPES
from fleetwire.protocol.release import ReleaseSpec

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
RELEASE_SPEC: Final = "release-spec"
SCHEMA_DIR: Final = "schemas"
ASYNCAPI_FILE: Final = "asyncapi.yaml"

JsonObject = dict[str, Any]


def _require_attributes(schema: JsonObject) -> JsonObject:
    """Mark CloudEvents' required attributes required: the models default them, the wire not."""
    required = list(schema.get("required", []))
    required += [name for name in REQUIRED_ATTRIBUTES if name not in required]
    return {**schema, "required": required}


def sort_keys(value: Any) -> Any:
    """A deep copy of ``value`` with every mapping's keys sorted, for stable output."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def _standalone(model: type[BaseModel], title: str, description: str) -> JsonObject:
    schema = model.model_json_schema(mode="validation")
    if issubclass(model, Envelope):
        schema = _require_attributes(schema)
    out: JsonObject = sort_keys(
        {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": title, "description": description}
    )
    return out


def describe(model: type[BaseModel]) -> str:
    """A model's docstring as Markdown; a message that only names its type borrows its data's."""
    doc = inspect.cleandoc(model.__doc__ or "")
    if issubclass(model, Envelope) and (not doc or doc.startswith("``")):
        data_model = model.model_fields["data"].annotation
        if isinstance(data_model, type):
            doc = inspect.cleandoc(data_model.__doc__ or "")
    return doc.replace("``", "`") or model.__name__


def json_schemas() -> dict[str, JsonObject]:
    """A standalone JSON Schema per message type (keyed by type) and for the release spec."""
    out = {t: _standalone(cls, t, describe(cls)) for t, cls in MESSAGE_TYPES.items()}
    out[RELEASE_SPEC] = _standalone(
        ReleaseSpec, "Fleetwire release specification", describe(ReleaseSpec)
    )
    return out


def component_schemas(
    models: Iterable[type[BaseModel]], ref_prefix: str
) -> tuple[dict[type[BaseModel], str], dict[str, JsonObject]]:
    """Schemas of ``models`` sharing one set of definitions, for embedding in one document.

    Returns the definition name of each model and the definitions, whose references point at
    ``ref_prefix + name`` (e.g. ``#/components/schemas/``).
    """
    models = list(models)
    refs, top = models_json_schema(
        [(m, "validation") for m in models], ref_template=ref_prefix + "{model}"
    )
    names = {m: refs[(m, "validation")]["$ref"].removeprefix(ref_prefix) for m in models}
    defs: dict[str, JsonObject] = dict(top.get("$defs", {}))
    for model, name in names.items():
        if issubclass(model, Envelope):
            defs[name] = {**_require_attributes(defs[name]), "description": describe(model)}
    return names, sort_keys(defs)


def dump_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- a small, deterministic YAML emitter (the protocol package depends on no YAML library) ---

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.-]*$")
# YAML 1.1 readers (PyYAML) take these as booleans or null when unquoted.
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_BLOCK_SAFE = re.compile(r"^[ -~\n]*$")


def _key(key: str) -> str:
    if _PLAIN_KEY.match(key) and key.lower() not in _RESERVED:
        return key
    return _scalar(key)


def _block_lines(text: str) -> list[str] | None:
    """The lines of ``text`` for a literal block scalar, or ``None`` if it must be quoted."""
    if "\n" not in text.rstrip("\n") or text.endswith("\n\n") or not _BLOCK_SAFE.match(text):
        return None
    lines = text.removesuffix("\n").split("\n")
    if lines[0].startswith(" ") or any(line != line.rstrip() for line in lines):
        return None
    return lines


# Characters YAML does not allow raw, or reads as line breaks, inside a double-quoted scalar.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        # A JSON string is a YAML double-quoted scalar; escape what YAML treats differently.
        text = json.dumps(value, ensure_ascii=False)
        return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no JSON representation")
        text = repr(value)
        # YAML 1.1 readers (PyYAML) only take a float with a dot: 1e+16 must be 1.0e+16.
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0{e}{exponent}" if e and "." not in mantissa else text
    if isinstance(value, bool | int):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _node(value: Any, indent: int) -> tuple[str, list[str]]:
    """What follows ``key:`` or ``-`` on the same line, and the lines nested below it."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        return "", _mapping(value, indent)
    if isinstance(value, list) and value:
        return "", _sequence(value, indent)
    if isinstance(value, dict | list):
        return " {}" if isinstance(value, dict) else " []", []
    if isinstance(value, str) and (lines := _block_lines(value)) is not None:
        chomp = "" if value.endswith("\n") else "-"
        return f" |{chomp}", [pad + line if line else "" for line in lines]
    return " " + _scalar(value), []


def _mapping(value: dict[str, Any], indent: int) -> list[str]:
    out = []
    for k, v in value.items():
        inline, below = _node(v, indent + 2)
        out.append(f"{' ' * indent}{_key(k)}:{inline}")
        out.extend(below)
    return out


def _sequence(value: list[Any], indent: int) -> list[str]:
    out = []
    for item in value:
        inline, below = _node(item, indent + 2)
        if inline or not below:
            out.append(f"{' ' * indent}-{inline}")
            out.extend(below)
        else:  # a nested mapping or sequence starts on the dash's line
            out.append(f"{' ' * indent}- {below[0].lstrip()}")
            out.extend(below[1:])
    return out


def dump_yaml(value: dict[str, Any]) -> str:
    """Deterministic YAML text of a JSON-like mapping (key order kept), trailing newline."""
    return "\n".join(_mapping(value, 0)) + "\n"


def export_files() -> dict[str, str]:
    """Every generated file, by path relative to ``docs/``, with its exact text."""
    from fleetwire.protocol.asyncapi import asyncapi_document

    files = {f"{SCHEMA_DIR}/{name}.json": dump_json(s) for name, s in json_schemas().items()}
    files[ASYNCAPI_FILE] = (
        "# Generated by `uv run fleetwire protocol export`: do not edit by hand.\n"
        + dump_yaml(asyncapi_document())
    )
    return dict(sorted(files.items()))
