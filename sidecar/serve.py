"""Running the app: config errors as one clear line, uvloop when installed, graceful stop."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from sidecar.config import ConfigError

log = logging.getLogger("sidecar")


def serve(config_file: str, host: str, port: int, access_log: bool = False, workers: int = 1) -> int:
    from sidecar import keys
    from sidecar.app import create_app
    from sidecar.config import load_config
    from sidecar.plugins import PluginError

    try:
        config = load_config(config_file)
        database = config.database_path  # a bad $SIDECAR_DATABASE_URL fails here, not after binding
        app = create_app(config, workers=workers)
    except (ConfigError, PluginError) as exc:
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    for warning in config.warnings:
        log.warning("%s", warning)
    if not config.general.master_key:
        log.warning("no general_settings.master_key: every route is open to anyone who can reach %s:%s", host, port)
    loop_factory = _uvloop_factory()
    log.info("llm-sidecar serving %d deployments on http://%s:%d (%s%s)", len(app[keys.REGISTRY]), host, port,
             "uvloop" if loop_factory else "asyncio", f", {workers} workers" if workers > 1 else "")
    options = dict(
        print=None,
        access_log=log if access_log else None,
        shutdown_timeout=config.general.graceful_shutdown_seconds,
        handle_signals=True,
        # a client that leaves cancels its handler: the upstream call is dropped at once,
        # not at its next chunk (a thinking model may be silent for minutes, and bills)
        handler_cancellation=True,
    )
    try:
        if workers > 1:
            from sidecar import workers as pool

            slots = pool.bind(host, port, workers)
            pool.prepare_database(database)
            if port == 0:
                log.info("workers listen on port %d", slots[0][0].getsockname()[1])
            return pool.supervise(slots, lambda socks: _worker(app, loop_factory, socks, options))
        return _run(app, loop_factory, host=host, port=port, **options)
    except ConfigError as exc:  # found while starting: the database cannot be opened...
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    except OSError as exc:  # the port is taken, the address is not ours...
        sys.stderr.write(f"sidecar: cannot serve on {host}:{port}: {exc.strerror or exc}\n")
        return 1


def _worker(app: web.Application, loop_factory, socks, options: dict) -> int:
    """One of ``--workers``: a failure to start is one clear line, as for a single process."""
    try:
        return _run(app, loop_factory, sock=socks, **options)
    except ConfigError as exc:
        sys.stderr.write(f"sidecar: worker {os.getpid()}: {exc}\n")
        return 2


def _run(app: web.Application, loop_factory, **options) -> int:
    web.run_app(app, **options, **({"loop": loop_factory()} if loop_factory else {}))
    return 0


def _uvloop_factory():
    """uvloop's loop factory when the ``speed`` extra is installed, else None (plain asyncio)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
