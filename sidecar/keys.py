"""Typed keys of everything the app holds (aiohttp ``AppKey``), in one place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy
from aiohttp import web

from sidecar.config import Config
from sidecar.db import Database
from sidecar.info import InfoCache
from sidecar.provider import HttpSession, Provider
from sidecar.registry import Registry

if TYPE_CHECKING:
    from sidecar.hooks import Hooks
    from sidecar.routing.router import Router
    from sidecar.routing.user_config import UserRouters

CONFIG = web.AppKey("config", Config)
PLUGIN_MANAGER = web.AppKey("plugin_manager", pluggy.PluginManager)
PROVIDERS = web.AppKey("providers", Mapping[str, Provider])  # (a deferred plugin's imported when looked up)
REGISTRY = web.AppKey("registry", Registry)
DATABASE = web.AppKey("database", Database)
ROUTER: web.AppKey[Router] = web.AppKey("router")  # (typed by annotation: the router imports this module)
"""Routes every OpenAI request: retries, fallbacks, cooldowns, limits (:mod:`sidecar.routing`)."""
USER_ROUTERS: web.AppKey[UserRouters] = web.AppKey("user_routers")
"""Routers built from requests' ``user_config``, by the config's hash (a bounded LRU)."""
HOOKS: web.AppKey[Hooks] = web.AppKey("hooks")
"""The hooks beyond providers that plugins implement, looked up once (:mod:`sidecar.hooks`)."""
CLIENT_SESSION = web.AppKey("client_session", HttpSession)
"""The upstream client (``general_settings.upstream_http_client``)."""
INFO_CACHE = web.AppKey("info_cache", InfoCache)


@dataclass(slots=True)
class AppState:
    """What the app keeps track of while it runs."""

    workers: int = 1
    """Processes serving the same port and database (``--workers``)."""
    ready: bool = False
    """Plugins loaded and the database open (``/health/readiness``)."""
    started_at: float = field(default_factory=time.time)
    streams: set[asyncio.Task] = field(default_factory=set)
    """Streams being relayed now (cut with an error event at the shutdown deadline)."""
    data_version: int | None = None
    """The database's ``data_version`` last loaded (another worker's commit changes it)."""
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    moderation_default: tuple[int, str | None] | None = None
    """The group ``/v1/moderations`` uses without a ``model``, by registry version."""
    openapi: tuple[int, bytes] | None = None
    """``/openapi.json`` as encoded, by the number of routes it describes (:mod:`sidecar.openapi`)."""


STATE = web.AppKey("state", AppState)
SYNCED_MODELS = web.AppKey("synced_models", dict[str, dict[str, dict[str, Any]]])
"""Model lists stored by ``sidecar sync --models``, by provider (loaded at start-up)."""
