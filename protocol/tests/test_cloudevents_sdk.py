"""Any CloudEvents consumer can read Fleetwire envelopes: proven with the official Python SDK."""

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1.http import from_json

from fleetwire.protocol import decode, encode
from protocol.tests.goldens import GOLDEN_TYPES, golden_bytes


def _wire(message_type: str) -> bytes:
    # What a Fleetwire producer publishes, not only the (pretty-printed) golden file.
    return encode(decode(golden_bytes(message_type)))


@pytest.mark.parametrize("message_type", GOLDEN_TYPES)
def test_sdk_core_reads_envelope(message_type):
    payload = _wire(message_type)
    ours = decode(payload)
    event = JSONFormat().read(None, payload)
    assert isinstance(event, CloudEvent)  # validated as a CloudEvents 1.0 event
    assert event.get_specversion() == "1.0"
    assert event.get_id() == ours.id
    assert event.get_type() == ours.type
    assert event.get_source() == ours.source
    assert event.get_subject() == ours.subject
    assert event.get_time() == ours.time
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == ours.data.model_dump(mode="json", exclude_none=True)
    for extension in ("traceparent", "tracestate", "correlationid", "seq", "expires"):
        value = getattr(ours, extension, None)
        if value is not None:
            expected = value.isoformat().replace("+00:00", "Z") if extension == "expires" else value
            assert event.get_extension(extension) == expected


@pytest.mark.parametrize("message_type", GOLDEN_TYPES)
def test_sdk_v1_http_reads_envelope(message_type):
    payload = _wire(message_type)
    ours = decode(payload)
    event = from_json(payload)
    assert event["specversion"] == "1.0"
    assert event["id"] == ours.id
    assert event["type"] == ours.type
    assert event["source"] == ours.source
    assert event.data == ours.data.model_dump(mode="json", exclude_none=True)


def test_sdk_produced_event_decodes():
    # The other direction: an event built with the SDK, with an extra extension, decodes.
    golden = decode(golden_bytes("io.fleetwire.event.command.accepted.v1"))
    attributes = {
        "id": golden.id,
        "source": golden.source,
        "type": golden.type,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": golden.time,
        "seq": 7,
        "partitionkey": "gw-berlin-0042",
    }
    event = CloudEvent(attributes, golden.data.model_dump(mode="json"))
    message = decode(JSONFormat().write(event))
    assert message.id == golden.id
    assert message.data == golden.data
    assert getattr(message, "seq", None) == 7
