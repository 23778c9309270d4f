"""``GET /spend/logs``: the spend log's rows in LiteLLM's ``LiteLLM_SpendLogs`` shape, newest first.

Filters (query parameters, all optional): ``start_date`` and ``end_date`` (``YYYY-MM-DD``, a whole
UTC day, ``end_date`` included; or an ISO 8601 date and time, UTC unless it names its offset),
``model`` (the model group served or asked for, or the upstream model), ``user`` (or LiteLLM's
``user_id``: the body's ``user``), ``request_id`` (the ``x-litellm-call-id``); ``limit`` (default
1,000, at most 10,000) and ``offset`` page through them. A bad value is a 400 naming it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from sidecar import SidecarError
from sidecar_spendlog.store import SPEND_LOG

DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000
CALL_TYPES = {
    "chat": "acompletion", "completion": "atext_completion", "embedding": "aembedding",
    "moderation": "amoderation", "image_generation": "aimage_generation", "rerank": "arerank",
    "audio_transcription": "atranscription", "audio_speech": "aspeech",
}
"""The sidecar's capability -> LiteLLM's ``call_type`` (the proxy's async calls)."""
ERROR_CLASSES = {
    "bad_request": "BadRequestError", "auth": "AuthenticationError", "permission": "PermissionDeniedError",
    "not_found": "NotFoundError", "rate_limit": "RateLimitError", "timeout": "Timeout",
    "server": "InternalServerError", "context_window": "ContextWindowExceededError",
    "content_policy": "ContentPolicyViolationError",
}
"""The router's error kind -> the exception class LiteLLM names in ``error_information``."""
STATUS_KINDS = {400: "bad_request", 401: "auth", 403: "permission", 404: "not_found", 408: "timeout",
                429: "rate_limit", 504: "timeout"}
"""A failure without a kind (refused before any attempt: an unknown model...) is classed by its status."""

_SELECT = ("SELECT request_id, start_ms, end_ms, first_ms, capability, stream, requested_group, "
           "model_group, deployment_id, provider, model, prompt_tokens, completion_tokens, total_tokens, "
           "cached_tokens, reasoning_tokens, spend, status, status_code, error_kind, error_message, attempts, "
           "fallback, user, metadata FROM spend_logs")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


async def spend_logs(request: web.Request) -> web.Response:
    where, args = filters(request.query)
    limit = _count(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _count(request.query, "offset", 0, 0, None)
    sql = (f"{_SELECT}{' WHERE ' + ' AND '.join(where) if where else ''}"
           " ORDER BY start_ms DESC, rowid DESC LIMIT ? OFFSET ?")
    rows = await request.app[SPEND_LOG].select(sql, [*args, limit, offset])
    return web.Response(body=_encode([litellm_row(row) for row in rows]), content_type="application/json")


def filters(query: Any) -> tuple[list[str], list[Any]]:
    """SQL conditions and their arguments for the request's filters (a bad one is a 400)."""
    where: list[str] = []
    args: list[Any] = []
    start = _given(query, "start_date")
    end = _given(query, "end_date")
    since = None
    if start is not None:
        since, _ = parse_time("start_date", start)
        where.append("start_ms >= ?")
        args.append(since)
    if end is not None:
        until, whole_day = parse_time("end_date", end)
        if since is not None and until < since:
            raise SidecarError(400, f"end_date {end!r} is before start_date {start!r}", param="end_date",
                               code="invalid_value")
        where.append("start_ms < ?" if whole_day else "start_ms <= ?")
        args.append(until + 86_400_000 if whole_day else until)  # a day: the whole day is included
    model = _given(query, "model")
    if model is not None:
        where.append("(model_group = ? OR requested_group = ? OR model = ?)")
        args += [model, model, model]
    user = _given(query, "user") or _given(query, "user_id")
    if user is not None:
        where.append("user = ?")
        args.append(user)
    request_id = _given(query, "request_id")
    if request_id is not None:
        where.append("request_id = ?")
        args.append(request_id)
    if (_given(query, "summarize") or "false").lower() not in ("false", "0"):
        raise SidecarError(400, "summarize=true (LiteLLM's per-day totals) is not served: /spend/logs answers "
                                "rows; `sidecar spend` prints totals per model group and day",
                           param="summarize", code="invalid_value")
    return where, args


def parse_time(name: str, text: str) -> tuple[int, bool]:
    """Unix milliseconds of ``text``, and whether it is a whole day (``YYYY-MM-DD``, UTC midnight)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return _ms(datetime(day.year, day.month, day.day, tzinfo=UTC)), True
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SidecarError(400, f"{name} {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time "
                                "(2025-01-31T12:00:00Z)", param=name, code="invalid_value") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _ms(moment), False


def _ms(moment: datetime) -> int:
    """Exact (no float rounding): a row's ``startTime`` given back as a filter matches it."""
    return (moment - _EPOCH) // _ONE_MS


def litellm_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A table row as LiteLLM's ``/spend/logs`` answers one, plus the sidecar's own fields."""
    (request_id, start, end, first, capability, stream, requested, group, deployment_id, provider, model,
     prompt, completion, total, cached, reasoning, spend, status, status_code, kind, message, attempts,
     fallback, user, metadata) = row
    meta = _decode(metadata) if metadata else {}
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return {
        "request_id": request_id,
        "call_type": CALL_TYPES.get(capability, capability),
        "api_key": "",  # no virtual keys here (LiteLLM keeps a key's hash; never a credential)
        "spend": spend or 0.0,
        "total_tokens": total,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "startTime": iso(start),
        "endTime": iso(end),
        "request_duration_ms": end - start,
        "completionStartTime": iso(first if first is not None else end),
        "model": model or "",
        "model_id": deployment_id or "",
        "model_group": group,
        "custom_llm_provider": provider or "",
        "api_base": "",  # never shown
        "user": user or "",
        "end_user": user or "",
        "metadata": meta,
        "request_tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        "cache_hit": "",
        "cache_key": "",
        "team_id": None,
        "organization_id": None,
        "status": status,
        "requested_model_group": requested,
        "stream": bool(stream),
        "cache_read_input_tokens": cached,
        "reasoning_tokens": reasoning,
        "attempts": attempts,
        "fallback": bool(fallback),
        "status_code": status_code,
        "error_information": None if status == "success" else {
            "error_code": str(status_code),
            "error_class": ERROR_CLASSES.get(kind or STATUS_KINDS.get(status_code, "server"), ""),
            "error_kind": kind, "error_message": message or "", "llm_provider": provider or "",
        },
    }


def iso(ms: int) -> str:
    """``2025-01-31T12:00:00.123Z``."""
    return (_EPOCH + ms * _ONE_MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _given(query: Any, name: str) -> str | None:
    value = query.get(name)
    return value.strip() or None if value is not None else None


def _count(query: Any, name: str, default: int, low: int, high: int | None) -> int:
    text = _given(query, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high:,}" if high is not None else f"at least {low}"
        raise SidecarError(400, f"{name} must be a whole number {bounds}, not {text!r}", param=name,
                           code="invalid_value")
    return value

