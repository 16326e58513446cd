"""The AsyncAPI 3.0.0 document of the protocol, from the cloud's point of view.

The cloud (and any integrator) *sends* commands to devices and *receives* their events and
presence. The document is self-contained: message payload schemas are embedded under
``components/schemas``. Built from the models, topics and examples; pure, no I/O.
"""

import json
from typing import Any, Final

from fleetwire.protocol.codec import MAX_MESSAGE_BYTES, encode
from fleetwire.protocol.commands import COMMAND_CLASSES
from fleetwire.protocol.envelope import Envelope
from fleetwire.protocol.events import DEVICE_EVENT_CLASSES, PRESENCE_CLASSES
from fleetwire.protocol.examples import examples
from fleetwire.protocol.ids import DEVICE_ID_PATTERN
from fleetwire.protocol.registry import type_of
from fleetwire.protocol.schema import component_schemas, describe
from fleetwire.protocol.topics import COMMANDS, EVENTS, PRESENCE, EventCategory

ASYNCAPI_VERSION: Final = "3.0.0"
DOCUMENT_VERSION: Final = "1.0.0"
CONTENT_TYPE: Final = "application/cloudevents+json"
MQTT_BINDING_VERSION: Final = "0.2.0"
# What the agents and cloud services ask brokers for: one week of queueing while offline.
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
KEEP_ALIVE_S: Final = 30

_DESCRIPTION: Final = f"""\
Fleetwire deploys containerized applications to edge devices over MQTT. The cloud sends
commands to one device at a time; devices publish events and their presence.

Every payload is a CloudEvents 1.0 envelope in JSON structured mode
(`application/cloudevents+json`), so any CloudEvents SDK can read it. Message types are
versioned (`io.fleetwire.command.deploy.v1`); a device announces the types it understands in
its birth message and the cloud never sends it any other.

Delivery guarantees:

- Every topic is published and subscribed with QoS 1: delivery is at least once, so a message
  can arrive twice.
- Clients use persistent sessions (clean start false, a long session expiry on MQTT 5) so the
  broker queues QoS 1 messages while a device is offline; both sides also keep an outbox and
  republish until acknowledged.
- Consumers deduplicate by the envelope `id`; events also carry `seq`, a per-device sequence
  number without gaps: deduplicate and order by (device, seq), and ask for an inventory
  (`io.fleetwire.command.sync.v1`) when a gap appears.
- Commands are idempotent by `id`: a device that sees a command id again does not execute it
  again but republishes the recorded outcome. A command past its `expires` is rejected.
- Envelopes larger than {MAX_MESSAGE_BYTES} bytes (256 KiB) are rejected.

Both MQTT 5 and MQTT 3.1.1 work: everything the protocol needs travels in the payload. On MQTT
5, user properties mirror the envelope (`ce_id`, `ce_type`, `ce_source`, `traceparent`, ...).
"""

_SERVER_NOTES: Final = """\
MQTT 5 is preferred: clients request it and fall back to 3.1.1 when the broker refuses it.
Shared subscriptions (`$share/<group>/...`) scale event consumers out on MQTT 5 brokers.
The `lastWill` binding describes device agents' connections: the broker publishes the
retained presence death message when a device goes away. Cloud services connect without a
will.
"""


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def _mqtt(**fields: Any) -> dict[str, Any]:
    return {"mqtt": {**fields, "bindingVersion": MQTT_BINDING_VERSION}}


def _servers() -> dict[str, Any]:
    security = [
        _ref("components", "securitySchemes", "userPassword"),
        _ref("components", "securitySchemes", "X509"),
    ]
    death = examples()["io.fleetwire.event.presence.death.v1"]
    bindings = _mqtt(
        cleanSession=False,
        keepAlive=KEEP_ALIVE_S,
        sessionExpiryInterval=SESSION_EXPIRY_S,
        maximumPacketSize=MAX_MESSAGE_BYTES + 1024,
        lastWill={
            "topic": PRESENCE.template,
            "qos": 1,
            "retain": True,
            "message": encode(death).decode(),
        },
    )
    return {
        "production": {
            "host": "mqtt.example.com:8883",
            "protocol": "secure-mqtt",
            "protocolVersion": "5.0",
            "title": "Production broker (example)",
            "description": "Mosquitto or an MQTT cluster (EMQX, VerneMQ) over TLS.\n"
            + _SERVER_NOTES,
            "security": security,
            "bindings": bindings,
        },
        "embedded": {
            "host": "127.0.0.1:1883",
            "protocol": "mqtt",
            "protocolVersion": "3.1.1",
            "title": "Embedded broker",
            "description": "The in-process amqtt broker of a one-command installation. MQTT 3.1.1 "
            "only, no shared subscriptions; it queues messages only for authenticated clients.",
            "security": [_ref("components", "securitySchemes", "userPassword")],
            "bindings": bindings,
        },
    }


def _message(message_type: str, cls: type[Envelope], schema_name: str) -> dict[str, Any]:
    example = examples()[message_type]
    answers = not message_type.startswith("io.fleetwire.command.")
    summary, _, details = describe(cls).partition("\n\n")
    return {
        "name": cls.__name__,
        "title": message_type,
        "summary": " ".join(summary.split()),
        **({"description": details} if details else {}),
        "contentType": CONTENT_TYPE,
        "correlationId": _ref(
            "components", "correlationIds", "answeredCommand" if answers else "commandId"
        ),
        "payload": _ref("components", "schemas", schema_name),
        "bindings": _mqtt(payloadFormatIndicator=1, contentType=CONTENT_TYPE),
        "examples": [
            {
                "name": cls.__name__,
                "summary": f"A complete {message_type} message.",
                "payload": json.loads(encode(example)),
            }
        ],
    }


def _channel(address: str, title: str, description: str, messages: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "device_id": {
            "description": f"The device's id: one topic level matching `{DEVICE_ID_PATTERN}`.",
            "examples": ["gw-berlin-0042"],
        }
    }
    if "{category}" in address:
        parameters["category"] = {
            "description": "The event category; each event type has exactly one.",
            "enum": [c.value for c in EventCategory],
            "examples": [EventCategory.DEPLOYMENT.value],
        }
    return {
        "address": address,
        "title": title,
        "description": description,
        "parameters": parameters,
        "messages": {t: _ref("components", "messages", t) for t in messages},
    }


def _operation(
    action: str, channel: str, summary: str, messages: list[str], *, retain: bool
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": _ref("channels", channel),
        "summary": summary,
        "messages": [_ref("channels", channel, "messages", t) for t in messages],
        "bindings": _mqtt(qos=1, retain=retain),
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document, as a JSON-compatible mapping."""
    command_types = [type_of(c) for c in COMMAND_CLASSES]
    event_types = [type_of(c) for c in DEVICE_EVENT_CLASSES]
    presence_types = [type_of(c) for c in PRESENCE_CLASSES]
    classes = [*COMMAND_CLASSES, *DEVICE_EVENT_CLASSES, *PRESENCE_CLASSES]
    names, schemas = component_schemas(classes, "#/components/schemas/")
    categories = ", ".join(f"`{c.__name__}` on `{c.category}`" for c in DEVICE_EVENT_CLASSES)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:io.fleetwire:protocol:v1",
        "info": {
            "title": "Fleetwire",
            "version": DOCUMENT_VERSION,
            "description": _DESCRIPTION,
            "license": {
                "name": "Apache-2.0",
                "url": "https://www.apache.org/licenses/LICENSE-2.0",
            },
            "tags": [{"name": "edge"}, {"name": "containers"}, {"name": "cloudevents"}],
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": {
            "commands": _channel(
                COMMANDS.template,
                "Device commands",
                "Commands for one device. Not retained. Only the cloud publishes here; a device "
                "subscribes to its own topic.",
                command_types,
            ),
            "events": _channel(
                EVENTS.template,
                "Device events",
                "Events a device publishes, one category per topic level. Not retained. "
                f"Categories: {categories}.",
                event_types,
            ),
            "presence": _channel(
                PRESENCE.template,
                "Device presence",
                "Retained: the birth message on connect, replaced by the death message (the "
                "will, or the agent's own on a clean exit). The retained message is the "
                "device's current presence.",
                presence_types,
            ),
        },
        "operations": {
            "sendCommand": _operation(
                "send", "commands", "Send a command to one device.", command_types, retain=False
            ),
            "receiveEvents": _operation(
                "receive", "events", "Receive device events.", event_types, retain=False
            ),
            "receivePresence": _operation(
                "receive", "presence", "Receive device presence.", presence_types, retain=True
            ),
        },
        "components": {
            "schemas": schemas,
            "messages": {type_of(c): _message(type_of(c), c, names[c]) for c in classes},
            "securitySchemes": {
                "userPassword": {
                    "type": "userPassword",
                    "description": "MQTT username and password: one identity per device, per "
                    "cloud service and per integrator; ACLs restrict each to its topics.",
                },
                "X509": {
                    "type": "X509",
                    "description": "TLS client certificate per device (mutual TLS).",
                },
            },
            "correlationIds": {
                "commandId": {
                    "description": "A command's own id; events answering it carry it in "
                    "`correlationid`.",
                    "location": "$message.payload#/id",
                },
                "answeredCommand": {
                    "description": "The id of the command this event answers, when it answers one.",
                    "location": "$message.payload#/correlationid",
                },
            },
        },
    }
