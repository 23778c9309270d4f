"""Running the hooks beyond providers: decided once at start-up, so an unimplemented one costs nothing.

:class:`Hooks` is built from the plugin manager when the app is created. ``pre_call`` is None
unless a plugin implements ``sidecar_pre_call``; ``events`` is None unless one implements
``sidecar_call_finished`` or ``sidecar_calls_finished``. The router checks those two attributes,
nothing more, per request.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pluggy
from aiohttp import web

from sidecar import keys
from sidecar.config import ConfigError
from sidecar.errors import SidecarError
from sidecar.events import CallEvent, PreCall

__all__ = ["public"]

log = logging.getLogger("sidecar")

DEFAULT_MAX_PENDING = 10_000
DRAIN_SECONDS = 5.0
"""At shutdown, how long queued events may take to be delivered."""
_LOG_EVERY = 10.0


class HookFailure(ConfigError):
    """A plugin's start-up hook or route table is broken (the message names the plugin): the
    sidecar does not start."""


def public(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a plugin's route handler as served without the master key (as ``/health/*`` are,
    and as LiteLLM serves ``/metrics``)."""
    handler.sidecar_public = True  # type: ignore[attr-defined]
    return handler


def _impls(caller: pluggy.HookCaller) -> list[Any]:
    """The hook's implementations in pluggy's call order (the last registered first)."""
    return list(reversed(caller.get_hookimpls()))


def _call(impl: Any, **kwargs: Any) -> Any:
    """Call an implementation with the arguments it names (pluggy lets it take a subset)."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


class PreCallRunner:
    """``sidecar_pre_call`` implementations, in order, each seeing the body the last one left."""

    def __init__(self, impls: list[Any], app: web.Application) -> None:
        self.impls = impls
        self.app = app

    async def run(self, pre: PreCall) -> dict[str, Any]:
        for impl in self.impls:
            try:
                result = _call(impl, call=pre, app=self.app)
                if inspect.isawaitable(result):
                    result = await result
            except SidecarError:
                raise
            except Exception as exc:
                log.error("plugin %s: sidecar_pre_call failed: %s: %s", impl.plugin_name,
                          type(exc).__name__, exc, extra={"call_id": pre.call_id})
                raise SidecarError(500, f"a pre-call hook failed (plugin {impl.plugin_name!r})",
                                   type="internal_server_error", code="pre_call_hook_failed") from None
            if result is not None:
                if not isinstance(result, dict):
                    log.error("plugin %s: sidecar_pre_call returned %s, not a dict or None",
                              impl.plugin_name, type(result).__name__, extra={"call_id": pre.call_id})
                    raise SidecarError(500, f"a pre-call hook returned no body (plugin {impl.plugin_name!r})",
                                       type="internal_server_error", code="pre_call_hook_failed")
                pre.body = result
        return pre.body


class EventBus:
    """Hands :class:`CallEvent` s to ``sidecar_call_finished`` and ``sidecar_calls_finished``
    off the request path.

    :meth:`emit` appends to a list; once per turn of the event loop the batch goes to the plain
    batch implementations (called there, on the loop: they must not block), to the ``async def``
    ones (a task) and to the plain per-event ones (one background thread), so a request never
    waits for them. At most ``max_pending`` events wait; beyond that they are dropped, counted in
    ``dropped`` and logged (at most one line every 10 s).
    """

    def __init__(self, impls: list[Any], app: web.Application, max_pending: int = DEFAULT_MAX_PENDING,
                 batch_impls: list[Any] | None = None) -> None:
        self.app = app
        self.max_pending = max_pending
        self.async_impls = [i for i in impls if inspect.iscoroutinefunction(i.function)]
        self.sync_impls = [i for i in impls if not inspect.iscoroutinefunction(i.function)]
        self.batch_async = [i for i in batch_impls or () if inspect.iscoroutinefunction(i.function)]
        self.batch_sync = [i for i in batch_impls or () if not inspect.iscoroutinefunction(i.function)]
        self.dropped = 0
        self._batch: list[CallEvent] = []
        self._waiting = 0  # handed over, not yet delivered
        self._thread: threading.Thread | None = None
        self._queue: queue.SimpleQueue[list[CallEvent] | None] = queue.SimpleQueue()
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logged_drop = 0.0
        self._logged_failure: dict[str, float] = {}

    def emit(self, event: CallEvent) -> None:
        """Queue ``event`` (never blocks, never raises)."""
        if self._waiting + len(self._batch) >= self.max_pending:
            self.dropped += 1
            now = time.monotonic()
            if now - self._logged_drop >= _LOG_EVERY:
                self._logged_drop = now
                log.warning("sidecar_call_finished is behind: %d events waiting; %d dropped so far",
                            self._waiting + len(self._batch), self.dropped)
            return
        if not self._batch:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._flush)
        self._batch.append(event)

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        for impl in self.batch_sync:
            try:
                _call(impl, events=batch, app=self.app)
            except Exception as exc:
                self._failed(impl, exc, "sidecar_calls_finished")
        if not (self.sync_impls or self.async_impls or self.batch_async):
            return
        if self.sync_impls:
            self._waiting += len(batch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_in_thread, name="sidecar-events", daemon=True)
                self._thread.start()
            self._queue.put(batch)
        if self.async_impls or self.batch_async:
            self._waiting += len(batch)
            task = asyncio.ensure_future(self._deliver_async(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver_async(self, batch: list[CallEvent]) -> None:
        try:
            for impl in self.batch_async:
                try:
                    await _call(impl, events=batch, app=self.app)
                except Exception as exc:
                    self._failed(impl, exc, "sidecar_calls_finished")
            for event in batch:
                for impl in self.async_impls:
                    try:
                        await _call(impl, event=event, app=self.app)
                    except Exception as exc:
                        self._failed(impl, exc)
        finally:
            self._waiting -= len(batch)

    def _deliver_in_thread(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for event in batch:
                for impl in self.sync_impls:
                    try:
                        _call(impl, event=event, app=self.app)
                    except Exception as exc:
                        self._failed(impl, exc)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._delivered, len(batch))  # (on the loop: _waiting is the loop's)
                except RuntimeError:  # the loop closed meanwhile
                    pass

    def _delivered(self, count: int) -> None:
        self._waiting -= count

    def _failed(self, impl: Any, exc: Exception, hook: str = "sidecar_call_finished") -> None:
        now = time.monotonic()
        if now - self._logged_failure.get(impl.plugin_name, 0.0) >= _LOG_EVERY:
            self._logged_failure[impl.plugin_name] = now
            log.error("plugin %s: %s failed: %s: %s (logged at most every %g s)",
                      impl.plugin_name, hook, type(exc).__name__, exc, _LOG_EVERY)

    async def close(self, seconds: float = DRAIN_SECONDS) -> None:
        """Deliver what is queued (for at most ``seconds``), then stop the thread."""
        self._flush()
        deadline = time.monotonic() + seconds
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)
        if self._thread is not None:
            self._queue.put(None)
            while self._thread.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self._thread = None
        if self._waiting:
            log.warning("%d events were not delivered to sidecar_call_finished before shutdown", self._waiting)


class Hooks:
    """The hooks a plugin manager implements, looked up once."""

    def __init__(self, pm: pluggy.PluginManager, app: web.Application, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        hook = pm.hook
        pre = _impls(hook.sidecar_pre_call)
        finished = _impls(hook.sidecar_call_finished)
        batched = _impls(hook.sidecar_calls_finished)
        self.pre_call: PreCallRunner | None = PreCallRunner(pre, app) if pre else None
        self.events: EventBus | None = (EventBus(finished, app, max_pending, batched)
                                        if finished or batched else None)
        self.startup = _impls(hook.sidecar_startup)
        self.routes = _impls(hook.sidecar_routes)
        config = app[keys.CONFIG]
        self.callbacks = [name for name in config.callbacks if pm.get_plugin(name) is not None]
        """The ``litellm_settings`` callbacks a plugin of that name serves."""
        unserved = [name for name in config.callbacks if name not in self.callbacks]
        if unserved:
            log.warning("litellm_settings callbacks %s: no installed plugin is registered under %s; ignored "
                        "(sidecar plugins lists the installed ones)", ", ".join(unserved),
                        "that name" if len(unserved) == 1 else "those names")

    def plugin_routes(self, app: web.Application) -> list[tuple[str, web.RouteDef]]:
        """Each plugin's extra routes, with its name."""
        out = []
        for impl in self.routes:
            try:
                defs = _call(impl, app=app) or []
            except Exception as exc:
                raise HookFailure(f"plugin {impl.plugin_name!r}: sidecar_routes failed: {type(exc).__name__}: {exc}") from exc
            for route in defs:
                if not isinstance(route, web.RouteDef):
                    raise HookFailure(f"plugin {impl.plugin_name!r}: sidecar_routes returned {route!r}, "
                                      "not an aiohttp route definition (web.get(path, handler)...)")
                out.append((impl.plugin_name, route))
        return out

    async def ctx(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: the plugins' start-up work, then (at shutdown) the last events delivered."""
        for impl in self.startup:
            try:
                result = _call(impl, app=app)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                raise HookFailure(f"plugin {impl.plugin_name!r}: sidecar_startup failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
        yield
        if self.events is not None:
            await self.events.close()


def add_plugin_routes(app: web.Application, routes: list[tuple[str, web.RouteDef]],
                      taken: Callable[[str, str], bool]) -> None:
    """Add plugins' routes; one the sidecar (or an earlier plugin) serves is a start-up error."""
    for plugin, route in routes:
        if taken(route.method, route.path):
            raise HookFailure(f"plugin {plugin!r}: sidecar_routes adds {route.method} {route.path}, "
                              "which is already served")
        route.register(app.router)
