"""The spend log: one row per request in the sidecar's SQLite file, ``GET /spend/logs`` and
``sidecar spend``, as LiteLLM's proxy keeps ``LiteLLM_SpendLogs`` whenever it has a database.

On by default (the sidecar always has its database); ``general_settings.disable_spend_logs: true``
(LiteLLM's switch) stops the writing. Rows are kept for ``general_settings.spend_log_retention``
(LiteLLM's ``maximum_spend_logs_retention_period`` works too; default 30 days, 0 for ever).
Built on the public hooks alone: :mod:`sidecar_spendlog.store` writes, :mod:`sidecar_spendlog.api`
serves ``/spend/logs``, :mod:`sidecar_spendlog.report` is ``sidecar spend``.
"""

from __future__ import annotations

import argparse
import re

import pluggy
from aiohttp import web

from sidecar import CallEvent, database_path, general_setting, hookimpl
from sidecar_spendlog.api import spend_logs
from sidecar_spendlog.report import add_command
from sidecar_spendlog.store import SPEND_LOG, SpendLog

__version__ = "0.1.0"

DEFAULT_RETENTION = "30d"
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "mo": 30 * 86_400}
_DURATION = re.compile(r"(\d+)(mo|[smhdw]?)")


def retention_seconds(value: str | int | None) -> float:
    """LiteLLM's duration (``"30d"``, ``"12h"``, ``"1mo"`` = 30 days; a number is seconds) in seconds;
    the config already checked its form."""
    if value is None:
        value = DEFAULT_RETENTION
    if isinstance(value, int):
        return float(value)
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"general_settings.spend_log_retention: {value!r} is not a duration such as 30d or 12h")
    return float(int(match[1]) * _UNITS[match[2]])


@hookimpl
async def sidecar_startup(app: web.Application) -> None:
    setting = general_setting(app, "spend_log_retention")
    if setting is None:
        setting = general_setting(app, "maximum_spend_logs_retention_period")
    spend_log = await SpendLog.open(database_path(app), retention_seconds(setting),
                                    recording=not general_setting(app, "disable_spend_logs"))
    app[SPEND_LOG] = spend_log
    spend_log.start()

    async def close(app: web.Application) -> None:
        await spend_log.close()

    app.on_cleanup.append(close)  # runs after the core has delivered the last events


class Recorder:
    """Hands each turn's finished calls to the app's spend log: registered only while it is on.
    A plain batch hook: it runs on the event loop once per turn and only queues rows (the writer
    is a task of its own), so no task or coroutine is made per event."""

    @hookimpl
    def sidecar_calls_finished(self, events: list[CallEvent], app: web.Application) -> None:
        spend_log = app.get(SPEND_LOG)
        if spend_log is not None:
            spend_log.add(events)


@hookimpl
def sidecar_configure(app: web.Application, pm: pluggy.PluginManager) -> None:
    """On unless ``disable_spend_logs``: then no event is even made for it (``/spend/logs`` still
    reads what was written before)."""
    if not general_setting(app, "disable_spend_logs"):
        pm.register(Recorder())


@hookimpl
def sidecar_routes(app: web.Application) -> list[web.RouteDef]:
    return [web.get("/spend/logs", spend_logs)]


@hookimpl
def sidecar_commands(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers)
