"""JSON Schema of every message type and the release spec, standalone or as shared definitions.

Schemas are pydantic's, in validation mode (what a decoder accepts), JSON Schema draft 2020-12.
Checks that pydantic runs in Python (image references, port and mount syntax, cross references
inside a release) are not expressible here: a payload valid against its schema can still be
rejected by the decoder, never the other way round. Everything here is pure: no I/O.
"""

import inspect
from collections.abc import Iterable
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fleetwire.protocol.envelope import REQUIRED_ATTRIBUTES, Envelope
from fleetwire.protocol.registry import MESSAGE_TYPES
from fleetwire.protocol.release import ReleaseSpec

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
RELEASE_SPEC: Final = "release-spec"

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
