"""``create_app(config)``: wires plugins, registry, database, client session and routes."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pluggy
from aiohttp import web

from sidecar import keys, middlewares, sync
from sidecar.config import Config, ConfigError
from sidecar.db import Database
from sidecar.errors import SidecarError
from sidecar.hooks import Hooks, add_plugin_routes
from sidecar.info import InfoCache
from sidecar.plugins import collect_providers, get_plugin_manager
from sidecar.registry import Deployment, Registry, build_deployment, config_deployment_id
from sidecar.routes import add_free_routes, add_routes
from sidecar.routing.policy import RouterPolicy
from sidecar.routing.router import Router
from sidecar.routing.state import RouterState, SharedCounters
from sidecar.routing.user_config import UserRouters
from sidecar.secrets import KNOWN_SECRETS
from sidecar.sse import end_streams_before_deadline

log = logging.getLogger("sidecar")

UPSTREAM_IDLE_SECONDS = 15.0
"""An idle upstream connection is closed after this (a burst leaves no thousand sockets open)."""


def create_app(config: Config, pm: pluggy.PluginManager | None = None, workers: int = 1) -> web.Application:
    """The aiohttp application for ``config``; ``pm`` defaults to installed plugins. With
    ``workers`` > 1 it is one of several processes sharing the database (:mod:`sidecar.sync`)."""
    pm = pm or get_plugin_manager()
    providers = collect_providers(pm)
    mw = [middlewares.guard(config.general.master_key)]
    if config.general.master_key:
        KNOWN_SECRETS.add([config.general.master_key])  # masked in every log line
    if workers > 1:
        mw.append(sync.fresh_registry)
    app = web.Application(
        middlewares=mw,
        client_max_size=int(config.general.max_request_size_mb * 1024 * 1024),
        handler_args={"max_field_size": 65536},
    )
    app[keys.CONFIG] = config
    app[keys.PLUGIN_MANAGER] = pm
    app[keys.PROVIDERS] = providers
    app[keys.STATE] = keys.AppState(workers=workers)
    registry = Registry(providers)
    registry.put_many(config_deployments(config, registry))
    app[keys.REGISTRY] = registry
    app[keys.INFO_CACHE] = InfoCache(registry)
    app[keys.SYNCED_MODELS] = {}
    pm.hook.sidecar_configure(app=app, pm=pm)
    hooks = app[keys.HOOKS] = Hooks(pm, app, config.general.max_pending_events)
    router = app[keys.ROUTER] = build_router(config, registry, app[keys.SYNCED_MODELS], workers)
    router.pre_call, router.events = hooks.pre_call, hooks.events
    app[keys.USER_ROUTERS] = UserRouters()
    app.cleanup_ctx.extend([client_session_ctx, database_ctx, hooks.ctx])
    if workers > 1:
        app.cleanup_ctx.append(sync.poll_ctx)
    app.on_shutdown.append(end_streams_before_deadline)
    add_routes(app)
    taken = lambda method, path: _served(app, method, path)  # noqa: E731
    add_plugin_routes(app, hooks.plugin_routes(app), taken)
    add_free_routes(app, taken)
    return app


def _served(app: web.Application, method: str, path: str) -> bool:
    """Whether ``method path`` already has a route (a plugin may not take it over)."""
    for resource in app.router.resources():
        if resource.canonical == path and any(r.method in (method, "*") for r in resource):
            return True
    return False


def build_router(config: Config, registry: Registry, synced: dict, workers: int) -> Router:
    """The router of ``router_settings``; with workers, its limit counters in shared memory."""
    try:
        policy = RouterPolicy.from_settings(config.router)
    except ValueError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    shared = SharedCounters(rows=workers * 2) if workers > 1 else None
    return Router(registry, policy, RouterState(shared, samples=policy.samples), synced)


def config_deployments(config: Config, registry: Registry) -> list[Deployment]:
    """The config's deployments; a provider no plugin offers, or two entries claiming the same
    ``model_info.id``, is a start-up error with its path. Identical entries (the same name and
    params twice, e.g. to weigh a deployment double) get ids ``<hash>``, ``<hash>-2``, ..."""
    out: list[Deployment] = []
    seen: set[str] = set()
    for i, entry in enumerate(config.model_list):
        where = f"{config.source}: $.model_list[{i}]"
        given = entry.model_info.get("id")
        deployment_id = str(given) if given is not None else config_deployment_id(entry.model_name, entry.raw_params)
        if deployment_id in seen:
            if given is not None:
                raise ConfigError(f"{where}.model_info.id: {deployment_id!r} is already used by another entry")
            deployment_id = next(f"{deployment_id}-{n}" for n in itertools.count(2) if f"{deployment_id}-{n}" not in seen)
        seen.add(deployment_id)
        try:
            out.append(build_deployment(
                registry.providers, model_name=entry.model_name, litellm_params=entry.litellm_params,
                model_info=entry.model_info, id=deployment_id, db_model=False, tpm=entry.tpm, rpm=entry.rpm,
            ))
        except SidecarError as err:
            if err.param and err.param.startswith("litellm_params.") and err.param != "litellm_params.model":
                raise ConfigError(f"{where}.{err.param}: {err.message.removeprefix(err.param + ': ')}") from None
            raise ConfigError(f"{where}.litellm_params.model: {err.message}") from None
    return out


async def client_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client for every upstream call (``general_settings.upstream_http_client``: the lean
    one by default, or aiohttp's ``ClientSession``): connections are reused (keep-alive), at most
    ``max_upstream_connections`` at once (``..._per_host`` to one provider); a request beyond
    waits for a free one within its own timeout, and an idle one closes after a while. The lean
    client takes proxies from ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (read once); aiohttp's
    gets ``trust_env`` only when one of those proxies is set, because it then reads them, and
    ``~/.netrc``, on every request (measured: it more than doubled the CPU of a proxied chat).
    No cookie jar: a cookie one upstream answer sets must not ride along on other clients' calls."""
    config = app[keys.CONFIG]
    general = config.general
    # Headers a pre-call hook adds (add_upstream_headers) go on only when a plugin could add some.
    hooked = app[keys.HOOKS].pre_call is not None
    session: Any
    if config.upstream_http_client == "lean":
        from sidecar.appview import upstream_headers
        from sidecar.httpclient import LeanSession

        session = LeanSession(limit=general.max_upstream_connections,
                              limit_per_host=general.max_upstream_connections_per_host,
                              keepalive_timeout=UPSTREAM_IDLE_SECONDS, trust_env=True,
                              request_headers=upstream_headers if hooked else None)
    else:
        from sidecar.httpclient.proxy import proxies_in_environment

        connector = aiohttp.TCPConnector(limit=general.max_upstream_connections,
                                         limit_per_host=general.max_upstream_connections_per_host,
                                         keepalive_timeout=UPSTREAM_IDLE_SECONDS, ttl_dns_cache=300,
                                         enable_cleanup_closed=True)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",),
                                        cookie_jar=aiohttp.DummyCookieJar(), trust_env=proxies_in_environment(),
                                        trace_configs=[_upstream_headers_trace()] if hooked else None)
    app[keys.CLIENT_SESSION] = session
    yield
    await session.close()


def _upstream_headers_trace() -> aiohttp.TraceConfig:
    """Adds the headers hooks set for the current request (:func:`sidecar.add_upstream_headers`)."""
    from sidecar.appview import upstream_headers

    async def on_request_start(session: aiohttp.ClientSession, ctx: object,
                               params: aiohttp.TraceRequestStartParams) -> None:
        extra = upstream_headers()
        if extra:
            params.headers.update(extra)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return trace


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open SQLite, load API-added deployments, then declare the app ready."""
    path = app[keys.CONFIG].database_path
    try:
        db = await Database.open(path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the database {path}: {exc}") from None
    app[keys.DATABASE] = db
    # read before loading: another process's commit during the load is then seen as a change
    app[keys.STATE].data_version = await db.data_version()
    await sync.load_stored_deployments(db, app[keys.REGISTRY])
    app[keys.SYNCED_MODELS].update(await db.synced_models())
    if not len(app[keys.REGISTRY]):
        log.warning("no deployments in the config or the database: every model request gets a 404 until "
                    "one is added with POST /model/new")
    app[keys.STATE].ready = True
    yield
    app[keys.STATE].ready = False
    await db.close()
