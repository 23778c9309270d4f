"""The router's :class:`~sidecar.events.CallEvent` s: one per attempt, for ``sidecar_call_finished``.

Only called when a plugin listens (``router.events`` is set), so the request path pays nothing
otherwise. A failed attempt's event is held on the call until the router knows whether the client
gets that error (``final``) or a retry or fallback follows.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sidecar.errors import ProviderError, SidecarError
from sidecar.events import CallEvent
from sidecar.info import response_cost, token_prices
from sidecar.registry import Deployment
from sidecar.wire import Usage

if TYPE_CHECKING:
    from sidecar.routing.router import RoutedCall, Router


_POSITIONAL = ("call_id", "requested_group", "group", "capability", "stream", "deployment_id", "provider", "model",
               "ok", "status", "upstream_status", "error_kind", "error_code", "error_message", "attempt", "retry",
               "fallback", "final", "batch", "cooled_down", "prompt_tokens", "completion_tokens", "total_tokens",
               "cached_tokens", "reasoning_tokens", "cost", "start_time", "duration", "upstream_duration",
               "time_to_first_token", "remaining_requests", "remaining_tokens", "user", "metadata")
"""The order :func:`_base` passes a CallEvent's fields in (checked against the class below)."""
if CallEvent.__struct_fields__ != _POSITIONAL:  # pragma: no cover - a field added or moved in events.py
    raise ImportError(f"sidecar.routing.report passes CallEvent's fields in the order {_POSITIONAL}, "
                      f"not its own {CallEvent.__struct_fields__}")


def served(router: Router, call: RoutedCall, usage: Any, now: float) -> CallEvent:
    """The event of the attempt whose answer the client got (a stream: when it ended)."""
    dep = call.dep
    assert dep is not None
    group = call.served_group
    err = call.error
    prompt = completion = total = cached = reasoning = 0
    cost = None
    if usage is not None:
        if type(usage) is Usage:  # (a chat's: its fields read directly, not through getattr)
            prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
            total = usage.total_tokens or prompt + completion
            prompt_details, completion_details = usage.prompt_tokens_details, usage.completion_tokens_details
        else:
            prompt = getattr(usage, "prompt_tokens", 0) or 0
            completion = getattr(usage, "completion_tokens", 0) or 0
            total = getattr(usage, "total_tokens", 0) or prompt + completion
            prompt_details = getattr(usage, "prompt_tokens_details", None)
            completion_details = getattr(usage, "completion_tokens_details", None)
        if prompt_details is not None:
            cached = _detail(prompt_details, "cached_tokens")
        if completion_details is not None:
            reasoning = _detail(completion_details, "reasoning_tokens")
        if err is None:
            cost = call.cost  # (priced once, for the x-litellm-response-cost header)
            if cost is None and call.provider_call is not None:
                prices = token_prices(dep, call.provider_call.model, router.synced)
                cost = response_cost(prices, prompt, completion, getattr(usage, "search_units", 0) or 0)
    first = call.first_at - call.started if call.stream and call.first_at else None
    remaining_requests = remaining_tokens = None
    route = call.route
    if route is not None:
        limits = route.limits
        if limits.rpm is not None or limits.tpm is not None:
            requests, used, _, _ = router.state.usage(dep.id, now)
            if limits.rpm is not None:
                remaining_requests = max(limits.rpm - requests, 0)
            if limits.tpm is not None:
                remaining_tokens = max(limits.tpm - used, 0)
    ok, status, kind, code, message = True, 200, None, None, None
    if err is not None:  # a stream that failed after its first chunk
        ok, status, kind, code, message = False, err.status, getattr(err, "kind", None), err.code, err.message
    return _base(call, group, dep, now, group == call.group or not call.fallbacks, True, ok, status, kind, code,
                 message, prompt, completion, total, cached, reasoning, cost, first, remaining_requests,
                 remaining_tokens)


def attempt_failed(router: Router, call: RoutedCall, group: str, dep: Deployment, err: ProviderError,
                   original: bool, cooled: bool) -> None:
    """Hold the failed attempt's event; the one held before it was not final: send it."""
    if call.failed_attempt is not None and router.events is not None:
        router.events.emit(call.failed_attempt)
    now = time.monotonic()
    event = _base(call, group, dep, now, original, final=False)
    event.upstream_duration = now - call.attempt_started if call.attempt_started else event.duration
    _set_error(event, err)
    event.cooled_down = cooled
    call.failed_attempt = event


def final_failure(router: Router, call: RoutedCall, err: SidecarError) -> None:
    """The client gets ``err``: the held attempt's event is final; with none, one without a deployment."""
    assert router.events is not None
    event = call.failed_attempt
    call.failed_attempt = None
    if event is None:
        event = _base(call, call.group, None, time.monotonic(), original=True)
        _set_error(event, err)
    else:
        event.final = True
        event.status, event.error_message = err.status, err.message  # (the client's status: 408 for a timeout...)
    router.events.emit(event)


def _base(call: RoutedCall, group: str, dep: Deployment | None, now: float, original: bool, final: bool = True,
          ok: bool = True, status: int = 200, kind: str | None = None, code: str | None = None,
          message: str | None = None, prompt: int = 0, completion: int = 0, total: int = 0, cached: int = 0,
          reasoning: int = 0, cost: float | None = None, first: float | None = None,
          remaining_requests: int | None = None, remaining_tokens: int | None = None) -> CallEvent:
    """The event of one attempt (:func:`served` passes every argument by position: a call with
    twenty keywords costs more). Its fields go to CallEvent by position: msgspec matches keyword
    arguments field by field, which for this 34-field struct cost about 12,000 instructions an
    event, against about 2,000 by position (callgrind). The order is checked against the class
    at import."""
    body = call.body
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        metadata = None
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        user = None
    duration = now - call.started
    if dep is None:
        dep_id = provider = model = None
    else:
        dep_id, provider, model = dep.id, dep.provider.name, dep.upstream  # (its upstream_model(), no capture)
    return CallEvent(
        call.id, call.group, group, call.capability, call.stream, dep_id, provider, model, ok, status, None, kind,
        code, message, call.attempts_made or 1, call.attempts.get(group, 0) > 1, not original, final, call.batch,
        False, prompt, completion, total, cached, reasoning, cost, time.time() - duration, duration,
        call.upstream_seconds, first, remaining_requests, remaining_tokens, user, metadata,
    )


def _set_error(event: CallEvent, err: SidecarError) -> None:
    event.ok, event.status, event.upstream_status = False, err.status, getattr(err, "upstream_status", None)
    event.error_kind, event.error_code, event.error_message = getattr(err, "kind", None), err.code, err.message


def _detail(details: Any, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else getattr(details, name, None)
    return value if isinstance(value, int) else 0
