"""Typed keys of everything the app holds (aiohttp ``AppKey``), in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pluggy
from aiohttp import web

from sidecar.config import Config
from sidecar.db import Database
from sidecar.info import InfoCache
from sidecar.provider import Provider
from sidecar.registry import Registry

if TYPE_CHECKING:
    from sidecar.routing.router import Router
    from sidecar.routing.user_config import UserRouters

CONFIG = web.AppKey("config", Config)
PLUGIN_MANAGER = web.AppKey("plugin_manager", pluggy.PluginManager)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
REGISTRY = web.AppKey("registry", Registry)
DATABASE = web.AppKey("database", Database)
ROUTER: web.AppKey[Router] = web.AppKey("router")  # (typed by annotation: the router imports this module)
"""Routes every OpenAI request: retries, fallbacks, cooldowns, limits (:mod:`sidecar.routing`)."""
USER_ROUTERS: web.AppKey[UserRouters] = web.AppKey("user_routers")
"""Routers built from requests' ``user_config``, by the config's hash (a bounded LRU)."""
CLIENT_SESSION = web.AppKey("client_session", aiohttp.ClientSession)
INFO_CACHE = web.AppKey("info_cache", InfoCache)
STATE = web.AppKey("state", dict[str, Any])
"""Small mutable flags: ``ready`` (plugins loaded and database open)."""
SYNCED_MODELS = web.AppKey("synced_models", dict[str, dict[str, dict[str, Any]]])
"""Model lists stored by ``sidecar sync --models``, by provider (loaded at start-up)."""
