"""Golden payloads: every message type has one, and every one keeps decoding forever."""

import pytest

from fleetwire.protocol import MESSAGE_TYPES, decode, encode
from protocol.tests.goldens import GOLDEN_DIR, GOLDEN_TYPES, golden_bytes, golden_path


def test_every_message_type_has_a_golden_file():
    missing = sorted(t for t in MESSAGE_TYPES if not golden_path(t).is_file())
    assert not missing, f"add golden payloads to {GOLDEN_DIR} for {missing}"


def test_every_listed_golden_file_still_exists():
    # The set of golden files never shrinks: old payloads must keep decoding.
    missing = [t for t in GOLDEN_TYPES if not golden_path(t).is_file()]
    assert not missing, f"golden files were removed: {missing}"


def test_every_golden_file_is_listed():
    on_disk = {p.name.removesuffix(".json") for p in GOLDEN_DIR.glob("*.json")}
    unlisted = sorted(on_disk - set(GOLDEN_TYPES))
    assert not unlisted, f"add {unlisted} to GOLDEN_TYPES in protocol/tests/goldens.py"


def test_every_message_type_is_listed():
    assert set(MESSAGE_TYPES) <= set(GOLDEN_TYPES)


@pytest.mark.parametrize("message_type", GOLDEN_TYPES)
def test_golden_round_trip(message_type):
    message = decode(golden_bytes(message_type))
    assert message.type == message_type
    assert isinstance(message, MESSAGE_TYPES[message_type])
    again = decode(encode(message))
    assert again == message
    assert encode(again) == encode(message)
