"""Logging for ``sidecar serve``: one handler that masks credentials and rate-limits repeats.

The sidecar's own logger (``sidecar``) follows ``--log-level``; every other logger (aiosqlite,
asyncio, aiohttp, plugins' libraries) follows ``--library-log-level``, WARNING by default, since
libraries log SQL parameters and request details at DEBUG. Whatever reaches the handler, from any
logger, passes :class:`SecretMask` first, so a credential that slips through is still masked.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

from sidecar.secrets import KNOWN_SECRETS, MASK, scrub

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGER = "sidecar"
REPEAT_INTERVAL_SECONDS = 10.0

CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("sidecar_call_id", default=None)
"""The id of the call being served (``x-litellm-call-id``): JSON log lines carry it as ``call_id``."""


class CallTagging:
    """Whether calls set :data:`CALL_ID`: only once a :class:`JsonFormatter` exists, the one
    reader (setting a context variable is about 5,000 instructions a request, paid for nothing
    by text logs, whose lines name the call themselves where it matters)."""

    on = False


def tag_call(call_id: str) -> None:
    """Mark the running task's log lines with ``call_id`` (a no-op unless JSON logs are on)."""
    if CallTagging.on:
        CALL_ID.set(call_id)

# Credential-shaped text, for secrets not (yet) known to any deployment: a value after a
# credential-named key (SQL parameters, JSON, query strings, headers) and bearer tokens.
_NAMED_CREDENTIAL = re.compile(
    r"""(?ix)
    ( ["']?[a-z0-9_\-]*(?:api[_\-]?key|token|secret|password|passwd|credentials?|authorization|signature)["']?
      \s*[:=]\s*["']? )
    (?!\*\*\*)(?:bearer\s+|basic\s+)?[^\s"',;&}\]]{4,}""")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=\-]{8,}")


def mask(text: str) -> str:
    """``text`` with every known secret and anything credential-shaped masked."""
    text = scrub(text, KNOWN_SECRETS)
    text = _NAMED_CREDENTIAL.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)


class SecretMask(logging.Filter):
    """Masks credentials in a record's message, its traceback and its stack (records of any logger)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self._formatter = formatter

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it when emitting
            return True
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


class RepeatLimiter(logging.Filter):
    """A warning or error that repeats (the same upstream timing out) is logged at most once per
    ``interval``. Repeats are told apart by logger, level and message, not by the call that
    logged them: a line's call id is the record's ``call_id`` attribute (``extra=``), which the
    formatters print, not part of its message. What is suppressed is counted, and reported by
    the next line of that kind let through once the interval has passed (nothing is logged
    just to report it)."""

    def __init__(self, interval: float = REPEAT_INTERVAL_SECONDS, max_kept: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._max_kept = max_kept
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}  # -> [last logged, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))  # (SecretMask formatted it already)
        now = self._clock()
        seen = self._seen.pop(key, None)  # (put back last: the least recently logged go first)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            self._seen[key] = seen
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [{seen[1]} more like this suppressed in the last {now - seen[0]:.0f} s]"
        self._seen[key] = [now, 0]
        if len(self._seen) > self._max_kept:
            del self._seen[next(iter(self._seen))]
        return True


class TextFormatter(logging.Formatter):
    """:data:`FORMAT`, with `` [call <id>]`` after the message of a line logged with a
    ``call_id`` attribute (``log.warning(..., extra={"call_id": ...})``)."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        call_id = getattr(record, "call_id", None)
        return f"{line} [call {call_id}]" if call_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    ``call_id`` when the line was logged while serving a call (the record's ``call_id``
    attribute, else :data:`CALL_ID`), and ``exception`` when there is a traceback
    (``--log-format json``, ``litellm_settings.json_logs``)."""

    def __init__(self) -> None:
        super().__init__()
        import msgspec

        CallTagging.on = True
        self._encode = msgspec.json.Encoder().encode

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = {"time": stamp, "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        call_id = getattr(record, "call_id", None) or CALL_ID.get()
        if call_id:
            line["call_id"] = call_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return self._encode(line).decode()


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def make_handler(log_format: str = "text", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> logging.Handler:
    """The one handler the sidecar logs through: ``log_format`` lines to ``stream`` (stderr),
    secrets masked, repeats limited (on ``clock``)."""
    formatter = formatter_for(log_format)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(SecretMask(formatter))
    handler.addFilter(RepeatLimiter(clock=clock))
    return handler


def configure(level: str, library_level: str, log_format: str = "text") -> logging.Handler:
    """Log to stderr through :func:`make_handler`'s handler; returns it."""
    handler = make_handler(log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(library_level.upper())
    logging.getLogger(OWN_LOGGER).setLevel(level.upper())
    return handler


def follow_config(config, level_given: bool, format_given: bool) -> None:
    """Apply ``litellm_settings.set_verbose`` (the sidecar's logger at DEBUG) and ``json_logs``
    (JSON lines), each unless its command-line option (or variable) was given."""
    if config.set_verbose and not level_given:
        logging.getLogger(OWN_LOGGER).setLevel(logging.DEBUG)
    if config.json_logs and not format_given:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())


def check_level(text: str) -> str:
    """A logging level name (for argparse)."""
    name = text.upper()
    if not isinstance(logging.getLevelName(name), int):
        import argparse

        raise argparse.ArgumentTypeError(f"unknown level {text!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return name
