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
from sidecar.info import info_for_model, response_cost
from sidecar.registry import Deployment

if TYPE_CHECKING:
    from sidecar.routing.router import RoutedCall, Router


def served(router: Router, call: RoutedCall, usage: Any, now: float) -> CallEvent:
    """The event of the attempt whose answer the client got (a stream: when it ended)."""
    dep = call.dep
    assert dep is not None
    event = _base(call, call.served_group, dep, now, original=call.served_group == call.group or not call.fallbacks)
    if usage is not None:
        _add_usage(event, router, call, dep, usage)
    err = call.error
    if err is not None:  # a stream that failed after its first chunk
        event.ok, event.status, event.error_message = False, err.status, err.message
        event.error_kind, event.error_code = getattr(err, "kind", None), err.code
    if call.stream:
        event.time_to_first_token = call.first_at - call.started if call.first_at else None
    limits = call.route.limits if call.route is not None else None
    if limits is not None and (limits.rpm is not None or limits.tpm is not None):
        requests, tokens, _, _ = router.state.usage(dep.id, now)
        if limits.rpm is not None:
            event.remaining_requests = max(limits.rpm - requests, 0)
        if limits.tpm is not None:
            event.remaining_tokens = max(limits.tpm - tokens, 0)
    return event


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


def _base(call: RoutedCall, group: str, dep: Deployment | None, now: float, original: bool,
          final: bool = True) -> CallEvent:
    body = call.body
    metadata = body.get("metadata")
    user = body.get("user")
    attempts = sum(call.attempts.values())
    duration = now - call.started
    return CallEvent(
        call_id=call.id, requested_group=call.group, group=group, capability=call.capability, stream=call.stream,
        deployment_id=dep.id if dep is not None else None, provider=dep.provider.name if dep is not None else None,
        model=dep.upstream_model() if dep is not None else None,
        attempt=max(attempts, 1), retry=call.attempts.get(group, 0) > 1, fallback=not original, final=final,
        batch=call.batch, start_time=time.time() - duration, duration=duration, upstream_duration=call.upstream_seconds,
        user=user if isinstance(user, str) else None, metadata=metadata if isinstance(metadata, dict) else None,
    )


def _set_error(event: CallEvent, err: SidecarError) -> None:
    event.ok, event.status, event.upstream_status = False, err.status, getattr(err, "upstream_status", None)
    event.error_kind, event.error_code, event.error_message = getattr(err, "kind", None), err.code, err.message


def _add_usage(event: CallEvent, router: Router, call: RoutedCall, dep: Deployment, usage: Any) -> None:
    prompt = getattr(usage, "prompt_tokens", 0) or 0
    completion = getattr(usage, "completion_tokens", 0) or 0
    event.prompt_tokens, event.completion_tokens = prompt, completion
    event.total_tokens = getattr(usage, "total_tokens", 0) or prompt + completion
    event.cached_tokens = _detail(getattr(usage, "prompt_tokens_details", None), "cached_tokens")
    event.reasoning_tokens = _detail(getattr(usage, "completion_tokens_details", None), "reasoning_tokens")
    if call.error is None and call.cost is not None:
        event.cost = call.cost  # (priced once, for the x-litellm-response-cost header)
    elif call.error is None and call.provider_call is not None:
        info = info_for_model(dep, call.provider_call.model, router.synced)
        event.cost = response_cost(info, prompt, completion, getattr(usage, "search_units", 0) or 0)


def _detail(details: Any, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else getattr(details, name, None)
    return value if isinstance(value, int) else 0
