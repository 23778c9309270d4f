"""Prometheus metrics for llm-sidecar: ``GET /metrics`` with LiteLLM's metric names and labels.

Turned on as LiteLLM turns it on, ``litellm_settings: {callbacks: ["prometheus"]}`` (or
``success_callback``). An app whose config does not name it gets nothing from this plugin: no
route, no recorder, no cost per request (``sidecar_configure`` registers the recorder only for the
apps that ask). ``/metrics`` (and ``/metrics/``) is served without the master key, as LiteLLM
serves it, unless ``litellm_settings.require_auth_for_metrics_endpoint`` is true.

Built on the public hooks alone: ``sidecar_configure`` (per app: the metric families, in a
registry of the app's own, and the recorder), ``sidecar_call_finished`` (the recorder, in the
sidecar's event thread), ``sidecar_routes`` (``/metrics``) and ``sidecar_startup``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pluggy
from aiohttp import web

from sidecar import callback_enabled, hookimpl, litellm_setting, public, worker_count

__version__ = "0.1.0"

log = logging.getLogger("sidecar.prometheus")

NAME = "prometheus"
"""The callback name that turns the plugin on (its entry point name)."""


@dataclass(slots=True)
class Metrics:
    """One app's metrics: what ``/metrics`` reads, and the recorder that writes them."""

    registry: Any
    """The prometheus_client ``CollectorRegistry`` ``/metrics`` exposes."""
    recorder: Any
    """Its ``sidecar_call_finished`` (a :class:`~sidecar_prometheus.recorder.Recorder`)."""
    pm: pluggy.PluginManager
    """The plugin manager the recorder is registered on (until the app's cleanup)."""
    multiprocess_dir: str | None
    require_auth: bool


METRICS = web.AppKey("sidecar_prometheus", Metrics)


@hookimpl
def sidecar_configure(app: web.Application, pm: pluggy.PluginManager) -> None:
    """With ``prometheus`` in the config's callbacks: this app's metric families and recorder."""
    if not callback_enabled(app, NAME):
        return
    from prometheus_client import CollectorRegistry

    from sidecar_prometheus import multiproc
    from sidecar_prometheus.families import Families
    from sidecar_prometheus.recorder import Recorder

    path = multiproc.directory(worker_count(app))
    end_user = _end_user(app)
    registry = CollectorRegistry()
    if path is None:
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

        families = Families(registry, end_user)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)  # (as LiteLLM's /metrics: process_*, python_* families)
    else:
        from prometheus_client.multiprocess import MultiProcessCollector

        families = Families(None, end_user)  # (values in files, read back by the collector)
        MultiProcessCollector(registry, path=path)
    recorder = Recorder(app, families, end_user)
    app[METRICS] = Metrics(registry, recorder, pm, path, bool(litellm_setting(app, "require_auth_for_metrics_endpoint")))
    pm.register(recorder)


def _end_user(app: web.Application) -> bool:
    """LiteLLM's ``enable_end_user_cost_tracking_prometheus_only``: the body's ``user`` as an
    ``end_user`` label (off by default: each client-chosen name would be a series of its own)."""
    return bool(litellm_setting(app, "enable_end_user_cost_tracking_prometheus_only"))


@hookimpl
def sidecar_routes(app: web.Application) -> list[web.RouteDef] | None:
    """``GET /metrics`` (and ``/metrics/``, which LiteLLM's scrape configs often use)."""
    metrics = app.get(METRICS)
    if metrics is None:
        return None

    async def serve_metrics(request: web.Request) -> web.Response:
        from prometheus_client.exposition import choose_encoder

        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        # (off the event loop: with workers it reads every worker's files)
        body = await asyncio.get_running_loop().run_in_executor(None, encode, metrics.registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    handler = serve_metrics if metrics.require_auth else public(serve_metrics)  # (a new function per app)
    return [web.get("/metrics", handler), web.get("/metrics/", handler)]


@hookimpl
def sidecar_startup(app: web.Application) -> None:
    """Say where the metrics are; at shutdown, take this app's recorder off the plugin manager."""
    metrics = app.get(METRICS)
    if metrics is None:
        return
    where = f", all workers' from {metrics.multiprocess_dir}" if metrics.multiprocess_dir else ""
    log.info("Prometheus metrics on /metrics%s%s", where, " (master key required)" if metrics.require_auth else "")

    async def unregister(app: web.Application) -> None:
        if metrics.pm.is_registered(metrics.recorder):
            metrics.pm.unregister(metrics.recorder)

    app.on_cleanup.append(unregister)
