"""The session without a reachable broker: it keeps retrying, with a log line, no traceback."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from edge.tests.agent_support import RunningAgent, agent_config
from fleetwire.edge.logs import configure_logging
from tests.fixtures.net import free_port
from tests.fixtures.waiting import wait_until


def test_unreachable_broker_is_retried_with_a_plain_log_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "text", "device-a", stream)
    try:
        port = free_port()
        agent = RunningAgent(agent_config(tmp_path, f"mqtt://127.0.0.1:{port}"))
        wait_until(lambda: stream.getvalue().count("retrying in") >= 2, 15, "two retries")
        agent.reconciler.emit_container(1)  # events are stored while offline
        assert agent.agent.store.outbox_size() == 1
        agent.stop()
    finally:
        logging.getLogger("fleetwire").removeHandler(handler)
    text = stream.getvalue()
    assert "cannot connect to mqtt://127.0.0.1" in text
    assert "[device_id=device-a]" in text
    assert "Traceback" not in text
