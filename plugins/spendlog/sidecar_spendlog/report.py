"""``sidecar spend``: requests, tokens and cost per model group and UTC day, from the spend log of
the database a config names (no server needed; it reads the file, read-only)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sidecar import ConfigError, config_database_path

HEADER = ("DAY", "GROUP", "REQUESTS", "FAILED", "PROMPT", "COMPLETION", "TOKENS", "COST_USD")
_SUMMARY = ("SELECT date(start_ms / 1000, 'unixepoch') AS day, model_group, COUNT(*), SUM(status != 'success'), "
            "SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), TOTAL(spend) FROM spend_logs{where} "
            "GROUP BY day, model_group ORDER BY day, model_group")


def add_command(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser(
        "spend", help="spend per model group and day, from the spend log",
        description="Requests (and failed ones), tokens and cost in USD per model group and UTC day, with "
                    "totals, from the spend log in the database of the config (no server needed).")
    cmd.add_argument("--config", default=None, help="config file (default: $SIDECAR_CONFIG, then config/sidecar.yaml)")
    cmd.add_argument("--start-date", type=_day, metavar="YYYY-MM-DD", help="first day (UTC); default: the oldest kept")
    cmd.add_argument("--end-date", type=_day, metavar="YYYY-MM-DD",
                     help="last day, included (UTC); default: the newest")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        path = config_database_path(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"sidecar: {exc}\n")
        return 2
    if args.start_date and args.end_date and args.end_date < args.start_date:
        sys.stderr.write(f"sidecar spend: --end-date {args.end_date} is before --start-date {args.start_date}\n")
        return 2
    try:
        rows = summary(path, args.start_date, args.end_date)
    except sqlite3.Error as exc:
        sys.stderr.write(f"sidecar spend: no spend log in {path} ({exc}); a sidecar with the spendlog plugin "
                         "writes it as it serves\n")
        return 1
    print_table(table(rows))
    return 0


def summary(path: str, start: date | None, end: date | None) -> list[tuple[Any, ...]]:
    """(day, group, requests, failed, prompt, completion, total tokens, cost) per UTC day and group."""
    if not Path(path).is_file():
        raise sqlite3.OperationalError("the file does not exist")
    where, args = [], []
    if start is not None:
        where.append("start_ms >= ?")
        args.append(_midnight(start))
    if end is not None:
        where.append("start_ms < ?")
        args.append(_midnight(end + timedelta(days=1)))
    sql = _SUMMARY.format(where=" WHERE " + " AND ".join(where) if where else "")
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5.0)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def table(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    """The printed rows: one per day and group, then a total per group, then the total of all."""
    out = [HEADER]
    totals: dict[str, list[float]] = {}
    for day, group, *figures in rows:
        out.append(_line(day, group, figures))
        into = totals.setdefault(group, [0] * len(figures))
        for i, value in enumerate(figures):
            into[i] += value
    grand = [sum(column) for column in zip(*totals.values())] or [0] * (len(HEADER) - 2)
    out += [_line("total", group, figures) for group, figures in sorted(totals.items())]
    out.append(_line("total", "(all)", grand))
    return out


def _line(day: str, group: str, figures: Sequence[float]) -> tuple[str, ...]:
    *counts, cost = figures
    return (day, group, *(str(int(n)) for n in counts), f"{cost:.6f}")


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Text columns left-aligned, figures right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def _midnight(day: date) -> int:
    """Unix milliseconds of the day's start (UTC)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
