"""The hooks of one app that traces: registered by ``sidecar_configure`` only when ``otel`` is on,
so an app without it has no pre-call or call-finished hook of ours to pay for."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from sidecar import CallEvent, PreCall, hookimpl
from sidecar_otel.exporting import ExportPlan

if TYPE_CHECKING:
    from sidecar_otel.spans import Tracing

__all__ = ["AppTracing"]

log = logging.getLogger("sidecar.otel")

_LOG_EVERY = 10.0


class AppTracing:
    """``app``'s tracer, started with the app (after the fork, with ``--workers``) and flushed at
    its cleanup. Everything runs on the event loop: ``sidecar_call_finished`` is ``async``."""

    def __init__(self, app: web.Application, export: ExportPlan) -> None:
        self.app = app
        self.export = export
        self.tracing: Tracing | None = None
        self._logged = 0.0

    @hookimpl
    def sidecar_startup(self, app: web.Application) -> None:
        if app is not self.app:  # (another app sharing the plugin manager)
            return
        from sidecar_otel.spans import Tracing

        self.tracing = Tracing.start(self.export)
        app.on_cleanup.append(self.close)

    @hookimpl
    def sidecar_pre_call(self, call: PreCall, app: web.Application) -> None:
        if self.tracing is None or app is not self.app:
            return
        try:
            self.tracing.request_started(call)
        except Exception as exc:  # tracing never fails a request (the core would answer 500)
            now = time.monotonic()
            if now - self._logged >= _LOG_EVERY:
                self._logged = now
                log.error("otel: the request's span failed: %s: %s [call %s] (logged at most every %g s)",
                          type(exc).__name__, exc, call.call_id, _LOG_EVERY)

    @hookimpl
    async def sidecar_call_finished(self, event: CallEvent, app: web.Application) -> None:
        if self.tracing is not None and app is self.app:
            self.tracing.finished(event)

    async def close(self, app: web.Application) -> None:
        if self.tracing is not None:
            await self.tracing.close()
