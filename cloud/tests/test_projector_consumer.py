"""The consumer's acknowledgement policy, with a fake client and a fake store (no broker)."""

from collections.abc import Sequence
from typing import Any, cast

import pytest

from fleetwire.cloud.errors import BrokerUnavailable
from fleetwire.cloud.mqtt import MqttClient
from fleetwire.cloud.projector.consumer import Consumer, subscription_filters
from fleetwire.cloud.projector.messages import BatchResult, Received


class FakeClient:
    """Records what the consumer does with its MQTT client."""

    def __init__(self) -> None:
        self.on_message: Any = None
        self.connected = False
        self.is_v5 = True
        self.subscribed: list[list[str]] = []
        self.acked: list[int] = []
        self.refuse_subscriptions = 0
        self.connects = 0

    def connect(self) -> None:
        self.connected = True
        self.connects += 1

    def close(self) -> None:
        self.connected = False

    def subscribe(self, filters: list[str]) -> None:
        if self.refuse_subscriptions:
            self.refuse_subscriptions -= 1
            raise BrokerUnavailable("the broker refused the subscription")
        self.subscribed.append(filters)

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


class FakeStore:
    """Takes batches; fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.failing = False

    def process(self, batch: Sequence[Received]) -> BatchResult:
        if self.failing:
            raise RuntimeError("database down")
        self.batches.append([m.topic for m in batch])
        return BatchResult(applied=len(batch))


def consumer(batch_max: int = 10) -> tuple[Consumer, FakeClient, FakeStore]:
    client, store = FakeClient(), FakeStore()
    return Consumer(cast(MqttClient, client), store, group="g", batch_max=batch_max), client, store


def test_connects_subscribes_shared_on_mqtt5_and_acknowledges_after_the_store():
    c, client, store = consumer()
    c.connect()
    assert client.subscribed == [subscription_filters(shared=True, group="g")]
    for mid in (1, 2):
        client.on_message(f"t{mid}", b"{}", mid, 1)
    result = c.run_once(timeout=0)
    assert result is not None
    assert result.applied == 2
    assert store.batches == [["t1", "t2"]]
    assert client.acked == [1, 2]
    assert (c.processed, c.batches) == (2, 1)
    assert c.run_once(timeout=0) is None


def test_a_failed_batch_stays_unacknowledged_and_is_handed_in_again():
    c, client, store = consumer()
    c.connect()
    client.on_message("t1", b"{}", 1, 1)
    store.failing = True
    with pytest.raises(RuntimeError):
        c.run_once(timeout=0)
    assert client.acked == []
    assert c.processed == 0
    store.failing = False
    client.on_message("t2", b"{}", 2, 1)
    c.run_once(timeout=0)
    assert store.batches == [["t1", "t2"]]
    assert client.acked == [1, 2]


def test_batches_are_bounded_and_messages_of_an_old_connection_are_not_acknowledged():
    c, client, store = consumer(batch_max=2)
    c.connect()
    for mid in (1, 2, 3):
        client.on_message(f"t{mid}", b"{}", mid, 1)
    c.connect()  # a new connection: mids 1-3 mean nothing on it, the broker redelivers them
    client.on_message("t4", b"{}", 4, 1)
    c.run_once(timeout=0)
    c.run_once(timeout=0)
    assert store.batches == [["t1", "t2"], ["t3", "t4"]]
    assert client.acked == [4]


def test_plain_subscriptions_without_mqtt5():
    c, client, _ = consumer()
    client.is_v5 = False
    c.connect()
    assert client.subscribed == [subscription_filters(shared=False, group="g")]


def test_a_refused_subscription_drops_the_link_and_the_next_pass_subscribes_again():
    c, client, _store = consumer()
    client.refuse_subscriptions = 1
    with pytest.raises(BrokerUnavailable):
        c.run_once(timeout=0)
    assert not client.connected, "connected but unsubscribed would receive nothing for ever"
    c.run_once(timeout=0)
    assert client.connects == 2
    assert client.subscribed == [subscription_filters(shared=True, group="g")]
