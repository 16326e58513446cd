"""Trace context: one span per handled command, its context carried into the events it causes.

The command's ``traceparent``/``tracestate`` (W3C, in the envelope) become the parent of a
``CONSUMER`` span. Without a configured OpenTelemetry SDK the span is non-recording and the
events simply carry the command's own trace context; with one, they carry the span's.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fleetwire.protocol.envelope import CommandEnvelope
from fleetwire.protocol.topics import COMMANDS

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_TRACER_NAME: Final = "fleetwire.edge"


@dataclass(frozen=True)
class TraceContext:
    """W3C trace context to put on an envelope."""

    traceparent: str | None = None
    tracestate: str | None = None


@contextmanager
def command_span(command: CommandEnvelope, device_id: str) -> Iterator[TraceContext]:
    """A span for handling ``command``; yields the context events it causes should carry."""
    carrier: dict[str, str] = {}
    if command.traceparent is not None:
        carrier["traceparent"] = command.traceparent
        if command.tracestate is not None:
            carrier["tracestate"] = command.tracestate
    parent = _PROPAGATOR.extract(carrier)
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        f"process {command.type}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "mqtt",
            "messaging.operation.type": "process",
            "messaging.destination.template": COMMANDS.template,
            "messaging.message.id": command.id,
            "fleetwire.device_id": device_id,
        },
    ):
        out: dict[str, str] = {}
        _PROPAGATOR.inject(out)
        yield TraceContext(out.get("traceparent"), out.get("tracestate") or None)
