"""Starting the sidecar: config errors as one clear line, uvloop when installed, one or N workers."""

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
    loop_factory = _uvloop_factory() or new_event_loop
    log.info("llm-sidecar serving %d deployments on http://%s:%d (%s%s)", len(app[keys.REGISTRY]), host, port,
             "asyncio" if loop_factory is new_event_loop else "uvloop",
             f", {workers} workers" if workers > 1 else "")
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


def _uvloop_factory():
    """uvloop's loop factory when the ``speed`` extra is installed, else None (plain asyncio)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
