"""Event history (cursor paging, filters) and the SSE stream."""

import json
import threading
from typing import Any

import httpx
import pytest

from cloud.tests.support import birth, dep_state, feed, make_settings
from fleetwire.cloud.auth import Role, create_token
from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.serve import CloudServices
from fleetwire.protocol.envelope import FIRST_SEQ


def test_history_paging_and_filters(api, engine, settings):
    events = [birth("d1")] + [dep_state("d1", FIRST_SEQ + i, f"dep-{i % 2}") for i in range(5)]
    feed(engine, settings, *events, birth("d2"))
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "device_id": "d1"} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/v1/events", params=params, headers=api.viewer).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["event_id"] for e in seen] == [e.id for e in events]
    by_dep = api.client.get("/v1/events?deployment_id=dep-1", headers=api.viewer).json()["items"]
    assert [e["seq"] for e in by_dep] == [FIRST_SEQ + 1, FIRST_SEQ + 3]
    births = api.client.get(
        "/v1/events", params={"type": "io.fleetwire.event.presence.birth.v1"}, headers=api.viewer
    ).json()["items"]
    assert {e["device_id"] for e in births} == {"d1", "d2"}
    t = events[3].time.isoformat()
    since = api.client.get("/v1/events", params={"device_id": "d1", "since": t}, headers=api.viewer)
    assert [e["seq"] for e in since.json()["items"]] == [FIRST_SEQ + i for i in (2, 3, 4)]
    until = api.client.get("/v1/events", params={"device_id": "d1", "until": t}, headers=api.viewer)
    assert len(until.json()["items"]) == 3
    assert api.client.get("/v1/events?limit=0", headers=api.viewer).status_code == 422


@pytest.mark.slow
def test_sse_stream(database_url):
    settings = make_settings(database_url, api_port=0)
    with CloudServices(settings, relay=False, projector=False) as services:
        assert services.engine is not None
        with session_scope(services.engine) as session:
            token = create_token(session, Role.VIEWER, "sse")
        feed(services.engine, settings, birth("old"))
        with services.engine.connect() as conn:
            start = conn.exec_driver_sql("SELECT max(id) FROM event").scalar()
        received: list[dict[str, Any]] = []
        opened = threading.Event()

        def consume():
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.stream(
                "GET",
                f"{services.api_url}/v1/events/stream",
                params={"limit": 2, "device_id": "live", "cursor": start},
                headers=headers,
                timeout=10,
            ) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                opened.set()
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        received.append(json.loads(line[5:]))

        thread = threading.Thread(target=consume)
        thread.start()
        # The events below are fed while the stream is open (live), not read as a backlog.
        assert opened.wait(10), "the event stream did not open"
        feed(
            services.engine,
            settings,
            birth("live"),
            birth("other"),
            dep_state("live", FIRST_SEQ, "x"),
        )
        thread.join(10)
        assert not thread.is_alive()
        assert [e["type"] for e in received] == [
            "io.fleetwire.event.presence.birth.v1",
            "io.fleetwire.event.deployment.state.v1",
        ]
        r = httpx.get(f"{services.api_url}/v1/events/stream")
        assert r.status_code == 401
