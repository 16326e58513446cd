"""``/v1/events``: the event history (cursor paging) and a live SSE stream."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar
from sse_starlette import EventSourceResponse, ServerSentEvent

from fleetwire.cloud.api.deps import SessionDep, SettingsDep, TokenDep, get_engine
from fleetwire.cloud.api.problems import PROBLEM_RESPONSES
from fleetwire.cloud.api.schemas import EventPage, EventPublic
from fleetwire.cloud.db.tables import Event

router = APIRouter(prefix="/events", tags=["events"], responses=PROBLEM_RESPONSES)


def _public(row: Event) -> EventPublic:
    assert row.id is not None
    return EventPublic(cursor=row.id, **row.model_dump(exclude={"id"}))


def _filtered(
    query: SelectOfScalar[Event],
    device_id: str | None,
    deployment_id: str | None,
    type_: str | None,
) -> SelectOfScalar[Event]:
    if device_id is not None:
        query = query.where(Event.device_id == device_id)
    if deployment_id is not None:
        query = query.where(Event.deployment_id == deployment_id)
    if type_ is not None:
        query = query.where(Event.type == type_)
    return query


@router.get("")
def list_events(
    session: SessionDep,
    _token: TokenDep,
    *,
    device_id: str | None = None,
    deployment_id: str | None = None,
    type: Annotated[str | None, Query(examples=["io.fleetwire.event.deployment.state.v1"])] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[int | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Events in the order they were projected, filtered by device, deployment, type and time."""
    query = _filtered(select(Event), device_id, deployment_id, type)
    if since is not None:
        query = query.where(Event.time >= since)
    if until is not None:
        query = query.where(Event.time < until)
    if cursor is not None:
        query = query.where(col(Event.id) > cursor)
    rows = list(session.exec(query.order_by(col(Event.id)).limit(limit + 1)))
    more = len(rows) > limit
    items = [_public(r) for r in rows[:limit]]
    return EventPage(items=items, next_cursor=items[-1].cursor if more and items else None)


def _last_id(engine: Engine) -> int:
    with Session(engine) as session:
        rows = list(session.exec(select(Event.id).order_by(col(Event.id).desc()).limit(1)))
        return rows[0] or 0 if rows else 0


def _fetch(
    engine: Engine, after: int, device_id: str | None, deployment_id: str | None, type_: str | None
) -> list[EventPublic]:
    with Session(engine) as session:
        query = _filtered(select(Event), device_id, deployment_id, type_)
        query = query.where(col(Event.id) > after).order_by(col(Event.id)).limit(500)
        return [_public(r) for r in session.exec(query)]


@router.get("/stream", response_class=EventSourceResponse)
async def stream_events(
    request: Request,
    *,
    settings: SettingsDep,
    _token: TokenDep,
    device_id: str | None = None,
    deployment_id: str | None = None,
    type: str | None = None,
    cursor: Annotated[int | None, Query(description="start after this cursor")] = None,
    limit: Annotated[int | None, Query(ge=1, description="close after this many")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Live events as Server-Sent Events (``event: <type>``, ``id: <cursor>``, JSON data).

    Starts after ``cursor`` (or ``Last-Event-ID`` on reconnect), else at the newest event.
    """
    engine = get_engine(request)
    if last_event_id is not None and last_event_id.isdigit():
        cursor = int(last_event_id)
    start = cursor if cursor is not None else await asyncio.to_thread(_last_id, engine)

    async def generate() -> AsyncIterator[ServerSentEvent]:
        after, sent = start, 0
        while not await request.is_disconnected():
            rows = await asyncio.to_thread(_fetch, engine, after, device_id, deployment_id, type)
            for row in rows:
                after = row.cursor
                yield ServerSentEvent(
                    data=json.dumps(row.model_dump(mode="json")), event=row.type, id=str(after)
                )
                sent += 1
                if limit is not None and sent >= limit:
                    return
            if not rows:
                await asyncio.sleep(settings.sse_poll_interval_s)

    return EventSourceResponse(generate(), ping=15)
