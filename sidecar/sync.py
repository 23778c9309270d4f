"""Keeping a worker's registry in step with the database that several workers share.

With ``sidecar serve --workers N`` each worker process has its own registry in memory and all
share one SQLite file. A worker notices the others' changes through SQLite's ``data_version``
(it changes when another connection commits) and reloads the stored deployments and synced
models: every second in the background; before every read of the registry over HTTP (GET) and
every change to it; and when a request names a model it does not know. So reads and changes
always see the latest state; a deployment changed or deleted through one worker may still serve
requests in another for up to a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator

from aiohttp import web

from sidecar import keys
from sidecar.config import ConfigError, resolve_env
from sidecar.db import Database
from sidecar.errors import ProviderError, SidecarError
from sidecar.registry import Deployment, Registry, build_deployment, own_model_info

log = logging.getLogger("sidecar")

POLL_SECONDS = 1.0
LOCK_WAIT_SECONDS = 10.0


async def load_stored_deployments(db: Database, registry: Registry, warn: bool = True) -> None:
    """Make the registry's API-added deployments those of the database. A row whose plugin is
    gone, whose environment variable is unset, or whose id a config entry claims is skipped
    (with a warning when ``warn``); rows that did not change keep their Deployment."""
    current = {dep.id: dep for dep in registry if dep.db_model}
    loaded: list[Deployment] = []
    for row in await db.list_deployments():
        old = current.get(row["id"])
        if old is None and registry.get(row["id"]) is not None:
            if warn:
                log.warning("skipping stored deployment %s (%s): the config file has a deployment with that id",
                            row["id"], row["model_name"])
            continue
        if (old is not None and old.model_name == row["model_name"] and old.stored_params == row["litellm_params"]
                and own_model_info(old.model_info) == row["model_info"]):
            loaded.append(old)
            continue
        try:
            loaded.append(build_deployment(
                registry.providers, model_name=row["model_name"],
                litellm_params=resolve_env(row["litellm_params"], "litellm_params", f"deployment {row['id']}"),
                model_info=row["model_info"], id=row["id"], db_model=True, stored_params=row["litellm_params"]))
        except (SidecarError, ConfigError) as exc:
            if warn:
                log.warning("skipping stored deployment %s (%s): %s", row["id"], row["model_name"],
                            getattr(exc, "message", exc))
    registry.replace_stored(loaded)


async def refresh(app: web.Application) -> bool:
    """Reload from the database if another process committed since the last look; True if so.
    A caller that is cancelled (its client left) does not cut a reload short."""
    db = app.get(keys.DATABASE)
    if db is None or await db.data_version() == app[keys.STATE].data_version:
        return False  # (the common case: no task for the shield)
    return await asyncio.shield(_reload(app))


async def _reload(app: web.Application) -> bool:
    state = app[keys.STATE]
    db = app[keys.DATABASE]
    async with state.sync_lock:
        version = await db.data_version()
        if version == state.data_version:
            return False
        await load_stored_deployments(db, app[keys.REGISTRY], warn=False)
        synced = await db.synced_models()
        current = app[keys.SYNCED_MODELS]
        if synced != current:
            current.clear()
            current.update(synced)
            for dep in app[keys.REGISTRY]:
                dep.info_cache.clear()  # (keyed by the dict's identity, which stays the same)
        state.data_version = version  # only once the reload is done: a failed one is retried
        return True


async def poll_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the database's) of a worker: look for others' changes every second."""

    async def poll() -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await refresh(app)
            except Exception:  # a busy or broken database: try again at the next turn
                log.exception("could not look for registry changes in the database")

    task = asyncio.create_task(poll())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@web.middleware
async def fresh_registry(request: web.Request, handler):
    """Workers' middleware: reads see other workers' changes, and so does a model name this
    worker did not know yet (the request is then served as if it had known it)."""
    if request.method == "GET":
        await refresh(request.app)
    registry = request.app[keys.REGISTRY]
    seen = registry.version
    try:
        return await handler(request)
    except SidecarError as err:
        # only the registry's own 404 (an upstream's is a ProviderError: never sent twice)
        if err.code != "model_not_found" or isinstance(err, ProviderError):
            raise
        await refresh(request.app)
        if registry.version == seen:  # (a reload the poll finished meanwhile counts too)
            raise
    return await handler(request)


@contextlib.asynccontextmanager
async def changing(app: web.Application) -> AsyncIterator[None]:
    """Held by a change to the registry, from reading a deployment to applying its change, so
    concurrent changes never lose one another: in this process, and with several workers across
    processes (a lock file next to the database), after reloading what the others changed."""
    async with app[keys.REGISTRY].write_lock:
        if app[keys.STATE].workers <= 1:
            yield
            return
        async with _file_lock(app[keys.DATABASE].path + ".lock"):
            await refresh(app)
            yield


@contextlib.asynccontextmanager
async def _file_lock(path: str) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise SidecarError(503, "another worker holds the registry lock; try again",
                                       code="registry_busy") from None
                await asyncio.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
