"""Hook specifications of llm-sidecar, in the style of pluggy's eggsample.

A plugin is a module (found through the ``llm_sidecar`` entry point group) whose functions are
marked with :data:`hookimpl`::

    from sidecar import hookimpl

    @hookimpl
    def sidecar_providers():
        return [MyProvider()]

An implementation takes any subset of its spec's arguments, by name. Those of
``sidecar_pre_call``, ``sidecar_call_finished`` and ``sidecar_startup`` may be ``async def``.
Which hooks have implementations is decided once at start-up: one nobody implements costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
]

if TYPE_CHECKING:
    import argparse

    from aiohttp import web

    from sidecar.events import CallEvent, PreCall
    from sidecar.provider import Provider

PROJECT_NAME = "llm_sidecar"
"""The pluggy project name, which is also the setuptools entry point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def sidecar_providers() -> list[Provider]:
    """Return the providers this plugin offers.

    Each :class:`sidecar.Provider` has a unique ``name``: the prefix a deployment's
    ``litellm_params.model`` starts with (``openai`` in ``openai/gpt-4o-mini``). The results of
    every plugin are merged; two plugins offering the same name is a start-up error. A plugin
    that declares its providers in the ``llm_sidecar.providers`` entry points is called the
    first time a deployment names one of them, or ``sidecar plugins`` lists it
    (:mod:`sidecar.plugins`), not at start-up.
    """


@hookspec
def sidecar_configure(app: web.Application, pm: pluggy.PluginManager) -> None:
    """Called once when an app is created, before the sidecar looks up which hooks are
    implemented: the place to turn a plugin on for this app only (pytest's ``pytest_configure``).
    Read the config (``sidecar.callback_enabled(app, "myname")``...) and, when enabled,
    ``pm.register(MyRecorder(app))``: an object whose methods are the hook implementations, with
    state of its own for this app. A plugin that is off registers nothing, so requests pay nothing
    for it."""


@hookspec
def sidecar_pre_call(call: PreCall, app: web.Application) -> dict[str, Any] | None:
    """See a request before the router sends it upstream; change it or refuse it.

    ``call.body`` is the OpenAI request body (a dict the implementation may change in place),
    ``call.group`` the model group it asked for, ``call.capability`` what it asks (``chat``,
    ``embedding``...), ``call.headers`` the client's request headers. Return a new body to
    replace it, or None to keep it. Raise :class:`sidecar.SidecarError` to refuse the request: the
    client gets its status and OpenAI error envelope, and no upstream is called. Implementations
    run in order (later-registered first), each seeing the body the one before left; called once
    per request, before its first attempt (retries and fallbacks send the same body). LiteLLM's
    ``async_pre_call_hook``: guardrails, redaction, per-team defaults.
    """


@hookspec
def sidecar_call_finished(event: CallEvent, app: web.Application) -> None:
    """Told about every finished upstream call: one :class:`sidecar.CallEvent` per attempt.

    A plain answer, a stream (when it ends), a batch member, and each retry and fallback attempt
    (``event.retry``, ``event.fallback``) each give one event; ``event.final`` marks the attempt
    whose answer or error the client got. Events are delivered after the answer, in batches:
    ``async def`` implementations on the event loop, plain ones in one background thread, so a
    slow or failing implementation never delays or breaks a request. At most
    ``general_settings.max_pending_events`` wait (default 10,000); beyond that events are dropped,
    counted and logged. The return value is ignored.
    """


@hookspec
def sidecar_calls_finished(events: list[CallEvent], app: web.Application) -> None:
    """The same events as :func:`sidecar_call_finished`, a batch at a time: called once per turn
    of the event loop with that turn's events, in order (do not change the list).

    For sinks that take events in bulk (a table, an exporter): one call per batch, not one per
    event. A plain implementation is called on the event loop itself, right after the turn's
    answers were handed over, so it must not block (append to a buffer, update counters); an
    ``async def`` one is awaited in a task. Failures are logged as for
    :func:`sidecar_call_finished`, and the same ``max_pending_events`` bound applies.
    """


@hookspec
def sidecar_routes(app: web.Application) -> list[web.RouteDef] | None:
    """Extra HTTP routes this plugin serves: a list of ``aiohttp.web`` route definitions
    (``web.get("/metrics", handler)``). They go through the sidecar's middlewares (the master key
    and the error envelope); a path the sidecar or another plugin serves is a start-up error."""


@hookspec
def sidecar_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sidecar`` subcommands: call ``subparsers.add_parser(name, help=...)`` and set its
    ``func`` default to a function taking the parsed ``argparse.Namespace`` and returning an exit
    status (datasette's ``register_commands``)."""


@hookspec
def sidecar_startup(app: web.Application) -> None:
    """Start-up work, once per app, after the database is open and before the first request is
    served (datasette's ``startup``): open a connection, start a task (store what you need in
    ``app`` under your own ``web.AppKey``). Work to undo at shutdown goes in
    ``app.on_cleanup``. An exception stops start-up with the plugin's name in the message."""
