"""OpenTelemetry traces for llm-sidecar, turned on by LiteLLM's ``litellm_settings.callbacks: ["otel"]``.

One span per request (``chat <model group>``, a child of the client's W3C ``traceparent``), one
child span per upstream attempt (``chat <upstream model>``, kind CLIENT: each retry and fallback
its own), named and described by OpenTelemetry's GenAI semantic conventions; the request span's
context goes upstream as ``traceparent`` with every HTTP call of the request. Exported in
batches by OTLP (``OTEL_EXPORTER_OTLP_*``; see exporting.py).

The OpenTelemetry SDK is an optional extra (``pip install 'sidecar-otel[otlp]'``): this module
imports nothing from it. When ``otel`` is not in the callbacks, :func:`sidecar_configure`
registers nothing (requests pay nothing, nothing more is imported); when it is but the SDK is
not installed, one warning says what to install and the sidecar serves without traces.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from sidecar import callback_enabled, hookimpl

if TYPE_CHECKING:
    import pluggy
    from aiohttp import web

__version__ = "0.1.0"

NAME = "otel"
"""The callback name that turns this plugin on (its entry point name)."""

HOOKS_NAME = "otel.tracing"
"""The name an app's :class:`sidecar_otel.hooks.AppTracing` is registered under."""

log = logging.getLogger("sidecar.otel")


@hookimpl
def sidecar_configure(app: web.Application, pm: pluggy.PluginManager) -> None:
    if not callback_enabled(app, NAME):
        return
    from sidecar_otel.exporting import missing, plan

    export = plan(os.environ)
    install = missing(export)
    if install is not None:
        log.warning("litellm_settings callbacks: otel needs the OpenTelemetry SDK and its OTLP exporter, which "
                    "are not installed: %s. The sidecar runs without traces.", install)
        return
    if export.note:
        log.warning("otel: %s", export.note)
    from sidecar_otel.hooks import AppTracing

    pm.register(AppTracing(app, export), name=HOOKS_NAME if pm.get_plugin(HOOKS_NAME) is None else None)
