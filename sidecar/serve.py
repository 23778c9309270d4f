"""Starting the sidecar: config errors as one clear line, the event loop ``$SIDECAR_EVENT_LOOP``
chooses (uvloop when installed, by default), one or N workers."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from aiohttp import web

from sidecar.config import ConfigError
from sidecar.loop import new_event_loop
from sidecar.runner import raise_fd_limit, run, tune_gc

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    import pluggy

log = logging.getLogger("sidecar")


def serve(config_file: str, host: str, port: int, access_log: bool = False, workers: int = 1,
          log_choices: tuple[bool, bool] = (False, False), pm: pluggy.PluginManager | None = None) -> int:
    """``log_choices``: whether the log level and the log format were given on the command line
    (else ``litellm_settings.set_verbose`` and ``json_logs`` choose them); ``pm``: the plugins
    the command line loaded already (else they are loaded here)."""
    from sidecar import keys
    from sidecar.app import create_app
    from sidecar.config import load_config
    from sidecar.plugins import PluginError

    try:
        loop_factory, loop_name = choose_loop()
    except ConfigError as exc:
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    try:
        config = load_config(config_file)
        database = config.database_path  # a bad $SIDECAR_DATABASE_URL fails here, not after binding
        app = create_app(config, pm, workers=workers)
    except (ConfigError, PluginError) as exc:
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    from sidecar.logs import follow_config

    follow_config(config, *log_choices)
    for warning in config.warnings:
        log.warning("%s", warning)
    if not config.general.master_key:
        log.warning("no general_settings.master_key: every route is open to anyone who can reach %s:%s", host, port)
    fd_limit = raise_fd_limit()
    tune_gc()  # (forked workers keep it)
    log.info("llm-sidecar serving %d deployments on http://%s:%d (%s%s)", len(app[keys.REGISTRY]), host, port,
             loop_name, f", {workers} workers" if workers > 1 else "")
    options = dict(access_log=log if access_log else None, fd_limit=fd_limit)
    from sidecar import tls_startup

    tls_startup.wait()  # (aiohttp's TLS contexts hold their CAs before anything can use them)
    try:
        if workers > 1:
            from sidecar import workers as pool

            slots = pool.bind(host, port, workers)
            pool.prepare_database(database)
            if port == 0:
                log.info("workers listen on port %d", slots[0][0].getsockname()[1])
            return pool.supervise(slots, lambda socks: _worker(app, loop_factory, socks, options))
        run(app, loop_factory(), host=host, port=port, **options)
        return 0
    except ConfigError as exc:  # found while starting: the database cannot be opened...
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    except OSError as exc:  # the port is taken, the address is not ours...
        sys.stderr.write(f"sidecar: cannot serve on {host}:{port}: {exc.strerror or exc}\n")
        return 1


def _worker(app: web.Application, loop_factory, socks, options: dict) -> int:
    """One of ``--workers``: a failure to start is one clear line, as for a single process."""
    try:
        run(app, loop_factory(), socks=socks, **options)
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"sidecar: worker {os.getpid()}: {exc}\n")
        return 2


EVENT_LOOPS = ("auto", "asyncio", "uvloop")
"""``$SIDECAR_EVENT_LOOP``'s values: ``auto`` (the default: uvloop when installed, else asyncio),
``asyncio`` (:class:`sidecar.loop.LeanLoop`, asyncio's selector loop) or ``uvloop``."""


def choose_loop() -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """The loop factory ``$SIDECAR_EVENT_LOOP`` chooses, and its name (``asyncio`` or ``uvloop``).
    A value not in :data:`EVENT_LOOPS`, or ``uvloop`` when it is not installed, is a
    :class:`ConfigError`. uvloop is imported only when it may be chosen."""
    value = os.environ.get("SIDECAR_EVENT_LOOP", "")
    choice = value.strip().lower() or "auto"
    if choice not in EVENT_LOOPS:
        raise ConfigError(f"SIDECAR_EVENT_LOOP={value!r} is not an event loop: use auto, asyncio or uvloop")
    if choice == "asyncio":
        return new_event_loop, "asyncio"
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise ConfigError(f"SIDECAR_EVENT_LOOP=uvloop, but uvloop cannot be imported ({exc}): "
                              "install it (pip install 'llm-sidecar[speed]') or use auto or asyncio") from None
        return new_event_loop, "asyncio"
    return uvloop.new_event_loop, "uvloop"
