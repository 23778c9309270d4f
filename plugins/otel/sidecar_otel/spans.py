"""The spans: one per request (a child of the client's ``traceparent``) and one per upstream
attempt (its children), exported in batches. Imported only when ``otel`` is turned on.

Everything here runs on the event loop (``sidecar_pre_call`` and an ``async``
``sidecar_call_finished``), so the open spans need no lock.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import sidecar
from sidecar import CallEvent, PreCall
from sidecar_otel import semconv
from sidecar_otel.exporting import ExportPlan, build_exporter

__all__ = ["Tracing"]

MAX_OPEN = 10_000
"""Requests whose span is open at once; beyond that the oldest is ended as unfinished."""
MAX_AGE = 3600.0
"""Seconds after which a request's span still open (its final event lost) is ended as unfinished."""
SHUTDOWN_SECONDS = 10.0
"""At shutdown, how long the last spans may take to be exported."""


@dataclass(slots=True)
class _Open:
    span: Any
    context: Context
    request: dict[str, Any]
    started: float  # time.monotonic()


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _start_of(span: Any) -> int:
    """A span's start (ns); 0 for one not recorded (sampled out)."""
    return getattr(span, "start_time", None) or 0


class Tracing:
    """One app's tracer: its provider, its open request spans by call id."""

    def __init__(self, provider: TracerProvider, max_open: int = MAX_OPEN, max_age: float = MAX_AGE) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("sidecar_otel", sidecar.__version__)
        self.propagator = TraceContextTextMapPropagator()
        self.open: OrderedDict[str, _Open] = OrderedDict()
        self.max_open = max_open
        self.max_age = max_age

    @classmethod
    def start(cls, export: ExportPlan, env: Mapping[str, str] = os.environ) -> Tracing:
        """A provider exporting by ``export`` in batches (``OTEL_BSP_*`` tune them), its resource
        from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (``llm-sidecar`` by default)."""
        attributes: dict[str, Any] = {"service.version": sidecar.__version__}
        if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
            attributes["service.name"] = "llm-sidecar"
        resource = Resource.create(attributes)
        if "service.instance.id" not in resource.attributes:  # (newer SDKs set one; with --workers, one each)
            resource = resource.merge(Resource({"service.instance.id": str(uuid.uuid4())}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(build_exporter(export)))
        return cls(provider)

    # ------------------------------------------------------------ a request

    def request_started(self, call: PreCall) -> None:
        """Open the request's span under the client's ``traceparent`` (if any), and send its
        context upstream with every HTTP call of the request."""
        parent = self.propagator.extract(call.headers)
        request = semconv.request_attributes(call.capability, call.group, call.body, call.stream)
        span = self.tracer.start_span(f"{request['gen_ai.operation.name']} {call.group}", context=parent,
                                      kind=SpanKind.SERVER, attributes={**request, "sidecar.call_id": call.call_id})
        context = trace.set_span_in_context(span, parent)
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=context)
        if carrier:
            sidecar.add_upstream_headers(carrier)
        self._expire()
        self.open[call.call_id] = _Open(span, context, request, time.monotonic())

    def finished(self, event: CallEvent) -> None:
        """An attempt's span (from the event's times), and at the final one the request's end."""
        entry = self.open.get(event.call_id)
        if entry is None:  # (refused by a pre-call hook that ran before ours, or expired)
            return
        if event.deployment_id is not None and entry.span.is_recording():  # (not sampled out)
            self._attempt(entry, event)
        if event.final:
            del self.open[event.call_id]
            span = entry.span
            span.set_attributes(semconv.final_attributes(event))
            if not event.ok:
                span.set_status(Status(StatusCode.ERROR, event.error_message or semconv.error_type(event)))
            span.end(end_time=max(_ns(event.start_time + event.duration), _start_of(span)))

    def _attempt(self, entry: _Open, event: CallEvent) -> None:
        end = event.start_time + event.duration
        if event.stream and event.time_to_first_token is not None:  # sent, answered (first chunk), ended
            begin = event.start_time + event.time_to_first_token - event.upstream_duration
        else:
            begin = end - event.upstream_duration
        start_ns = max(_ns(begin), _start_of(entry.span))
        attrs = semconv.attempt_attributes(event, entry.request)
        span = self.tracer.start_span(f"{attrs['gen_ai.operation.name']} {event.model or event.group}",
                                      context=entry.context, kind=SpanKind.CLIENT, attributes=attrs,
                                      start_time=start_ns)
        if not event.ok:
            span.set_status(Status(StatusCode.ERROR, event.error_message or semconv.error_type(event)))
        span.end(end_time=max(_ns(end), start_ns))

    # ------------------------------------------------------------ bounds and shutdown

    def _expire(self) -> None:
        """End the oldest open spans beyond :data:`MAX_OPEN` or :data:`MAX_AGE` (their final
        event was lost: a cancelled batch member, a client gone before its answer...)."""
        oldest = time.monotonic() - self.max_age
        while self.open:
            call_id, entry = next(iter(self.open.items()))
            if len(self.open) < self.max_open and entry.started > oldest:
                break
            del self.open[call_id]
            self._unfinished(entry)

    def _unfinished(self, entry: _Open) -> None:
        entry.span.set_attribute("sidecar.unfinished", True)
        entry.span.end()

    async def close(self, app: Any = None) -> None:
        """End what is still open, then export the rest and stop (in a thread: exporting blocks)."""
        for entry in self.open.values():
            self._unfinished(entry)
        self.open.clear()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self.provider.force_flush(int(SHUTDOWN_SECONDS * 1000))
        self.provider.shutdown()
