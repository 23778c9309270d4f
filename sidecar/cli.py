"""The ``sidecar`` command: ``serve``, ``plugins`` (and the registry's ``list`` and ``sync``)."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pluggy

DEFAULT_CONFIG = "config/sidecar.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. The garbage collector is off while the command starts up: importing
    aiohttp, the plugins and the rest makes hundreds of thousands of objects and a few thousand
    of garbage, and collecting as they were made cost 2.6% of start-up's instructions and 5-8% of
    its CPU time. ``serve`` turns it back on once the app is built (:func:`sidecar.runner.tune_gc`),
    other commands before they run; ``main`` returns with the collector as it found it."""
    from sidecar import tls_startup

    collecting = gc.isenabled()
    try:
        gc.disable()
        tls_startup.import_aiohttp()  # (before the plugins import it: its CA loading runs in a thread meanwhile)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        if args.func is not cmd_serve:  # (serve waits for the CAs just before it listens)
            tls_startup.wait()
            if collecting:
                gc.enable()
        return args.func(args) or 0
    finally:
        tls_startup.wait()  # (--help, a bad argument, a bad config: never exit inside OpenSSL's load)
        if collecting:
            gc.enable()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar", description="llm-sidecar: an OpenAI-compatible LLM gateway.")
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the gateway over HTTP",
                           description="Serve the OpenAI-compatible API. Stops gracefully on SIGTERM/SIGINT: "
                                       "no new connections, in-flight requests and streams finish within "
                                       "general_settings.graceful_shutdown_seconds.")
    _config_arg(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4000, help="port to listen on (default 4000)")
    serve.add_argument("--workers", "--num_workers", type=_positive, default=os.environ.get("SIDECAR_WORKERS", "1"),
                       metavar="N", help="worker processes sharing the port and the database, e.g. one per core "
                                         "(default 1, or $SIDECAR_WORKERS)")
    serve.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs)")
    serve.add_argument("--log-level", default=os.environ.get("SIDECAR_LOG_LEVEL"), type=_level,
                       help="the sidecar's logging level (default INFO, DEBUG with litellm_settings.set_verbose, "
                            "or $SIDECAR_LOG_LEVEL)")
    serve.add_argument("--log-format", default=os.environ.get("SIDECAR_LOG_FORMAT"), choices=("text", "json"),
                       help="text lines, or one JSON object per line (time, level, logger, message); default "
                            "text, json with litellm_settings.json_logs, or $SIDECAR_LOG_FORMAT")
    serve.add_argument("--library-log-level", default=os.environ.get("SIDECAR_LIBRARY_LOG_LEVEL", "WARNING"),
                       type=_level, help="libraries' logging level (aiosqlite, asyncio, aiohttp...; default "
                                         "WARNING, or $SIDECAR_LIBRARY_LOG_LEVEL); credentials are masked at any level")
    serve.set_defaults(func=cmd_serve)

    plugins = sub.add_parser("plugins", help="list installed plugins, their versions, hooks and providers",
                             description="List every plugin found through the llm_sidecar entry point group.")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(func=cmd_plugins)

    lister = sub.add_parser("list", help="table of model groups: provider, context, prices, capabilities",
                            description="List model groups from the config file and the database "
                                        "(no server needed).")
    _config_arg(lister)
    lister.set_defaults(func=cmd_list)

    sync = sub.add_parser("sync", help="refresh model lists from the providers' APIs",
                          description="Ask each configured provider's plugin for its live model list "
                                      "(e.g. GET /v1/models upstream) and store it in the database. "
                                      "Unreachable providers are reported and skipped; the shipped "
                                      "catalog stays the fallback.")
    _config_arg(sync)
    sync.add_argument("--models", action="store_true", help="sync model lists (the only thing to sync today)")
    sync.add_argument("--providers", default="", help="comma-separated provider names (default: all configured)")
    sync.set_defaults(func=cmd_sync)
    parser.set_defaults(plugin_manager=_plugin_commands(sub))  # (serve and plugins use it: loaded once)
    return parser


def _plugin_commands(sub: argparse._SubParsersAction) -> pluggy.PluginManager | None:
    """Subcommands plugins add (``sidecar_commands``), and the plugin manager that found them; a
    plugin that fails to load adds none here (None: ``sidecar serve`` then reports it)."""
    from sidecar.plugins import PluginError, get_plugin_manager

    try:
        pm = get_plugin_manager()
    except PluginError:
        return None
    pm.hook.sidecar_commands(subparsers=sub)
    return pm


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _level(text: str) -> str:
    from sidecar.logs import check_level

    return check_level(text)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help=f"config file (default: $SIDECAR_CONFIG, then {DEFAULT_CONFIG})")


def config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("SIDECAR_CONFIG") or DEFAULT_CONFIG


def cmd_serve(args: argparse.Namespace) -> int:
    from sidecar.logs import configure
    from sidecar.serve import serve

    configure(args.log_level or "INFO", args.library_log_level, args.log_format or "text")
    return serve(config_path(args), args.host, args.port, access_log=args.access_log, workers=args.workers,
                 log_choices=(args.log_level is not None, args.log_format is not None),
                 pm=args.plugin_manager)


def cmd_plugins(args: argparse.Namespace) -> int:
    from sidecar.plugins import PluginError, describe_plugins, get_plugin_manager

    try:
        rows = describe_plugins(args.plugin_manager or get_plugin_manager())  # (None: a plugin failed to load)
    except PluginError as exc:
        sys.stderr.write(f"sidecar: {exc}\n")
        return 1
    if args.json:
        import msgspec

        sys.stdout.write(msgspec.json.format(msgspec.json.encode(rows)).decode() + "\n")
        return 0
    # one line per provider, each line complete on its own (grep-able)
    table = [("PLUGIN", "VERSION", "PROVIDER", "CAPABILITIES", "HOOKS")]
    for r in rows:
        hooks = ",".join(r["hooks"]) or "-"
        for p in r["providers"] or [{"name": "-", "capabilities": []}]:
            table.append((r["name"], r["version"] or "-", p["name"], ",".join(p["capabilities"]) or "-", hooks))
    print_table(table)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import asyncio

    from sidecar.config import ConfigError
    from sidecar.offline import list_groups

    try:
        rows = asyncio.run(list_groups(config_path(args)))
    except ConfigError as exc:
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    print_table(rows)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    import asyncio

    from sidecar.config import ConfigError
    from sidecar.errors import SidecarError
    from sidecar.offline import sync_models

    if not args.models:
        sys.stderr.write("sidecar sync: nothing to sync; pass --models\n")
        return 2
    only = [p.strip() for p in args.providers.split(",") if p.strip()] or None
    try:
        results = asyncio.run(sync_models(config_path(args), only))
    except (ConfigError, SidecarError) as exc:
        sys.stderr.write(f"sidecar: {getattr(exc, 'message', exc)}\n")
        return 2
    for name, result in results.items():
        sys.stdout.write(f"{name}: {result if isinstance(result, str) else f'{result} models stored'}\n")
    failed = [r for r in results.values() if isinstance(r, str) and r.startswith(("unreachable", "plugin failed"))]
    return 1 if failed and len(failed) == len(results) else 0


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")


if __name__ == "__main__":
    sys.exit(main())
