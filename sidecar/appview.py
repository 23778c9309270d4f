"""What a hook plugin may read of the app it runs in, and the headers it may add upstream.

The app's typed state (:mod:`sidecar.keys`) is the core's own business; these functions are the
stable part a plugin uses instead (exported from :mod:`sidecar`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sidecar import keys

__all__ = ["add_upstream_headers", "callback_enabled", "callback_settings", "config_database_path", "database_path",
           "general_setting", "litellm_setting", "worker_count"]

_UPSTREAM_HEADERS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "sidecar_upstream_headers", default=None)


def callback_enabled(app: web.Application, name: str) -> bool:
    """Whether ``name`` is in ``litellm_settings`` ``callbacks`` / ``success_callback`` /
    ``failure_callback`` (LiteLLM's way of turning ``prometheus``, ``otel``... on)."""
    return name in app[keys.CONFIG].callbacks


def callback_settings(app: web.Application, name: str) -> dict[str, Any]:
    """``litellm_settings.callback_settings.<name>`` ({} if absent)."""
    return dict(app[keys.CONFIG].callback_settings.get(name) or {})


def general_setting(app: web.Application, name: str) -> Any:
    """A ``general_settings`` value the sidecar reads (its default when the config has none)."""
    return getattr(app[keys.CONFIG].general, name)


def litellm_setting(app: web.Application, name: str, default: Any = None) -> Any:
    """A ``litellm_settings`` key a built-in plugin acts on (``require_auth_for_metrics_endpoint``...:
    the core checks their types, :data:`sidecar.config.PLUGIN_LITELLM_SETTINGS`), or ``default``."""
    return app[keys.CONFIG].litellm_settings.get(name, default)


def database_path(app: web.Application) -> str:
    """The SQLite file the sidecar uses (a plugin may open its own connection and tables in it)."""
    return app[keys.CONFIG].database_path


def config_database_path(config_file: str | None = None) -> str:
    """The SQLite file ``sidecar serve --config config_file`` would use (None: the default config,
    ``$SIDECAR_CONFIG`` then ``config/sidecar.yaml``; ``$SIDECAR_DATABASE_URL`` wins over the
    file's ``database_url``), for a plugin's CLI command. Raises :class:`sidecar.ConfigError` when
    the file cannot be read or is not a valid config."""
    import argparse

    from sidecar.cli import config_path
    from sidecar.config import load_config

    return load_config(config_path(argparse.Namespace(config=config_file))).database_path


def worker_count(app: web.Application) -> int:
    """How many processes serve this sidecar (``--workers``); each runs its own app."""
    return app[keys.STATE].workers


def add_upstream_headers(headers: Mapping[str, str]) -> None:
    """Send ``headers`` with every upstream HTTP call of the current request (call it from
    ``sidecar_pre_call``): a W3C ``traceparent``, say. Credentials do not belong here."""
    current = _UPSTREAM_HEADERS.get()
    _UPSTREAM_HEADERS.set({**current, **headers} if current else dict(headers))


def upstream_headers() -> dict[str, str] | None:
    """The headers :func:`add_upstream_headers` set for the current request, if any."""
    return _UPSTREAM_HEADERS.get()
