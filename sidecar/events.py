"""What the hooks of a call see: :class:`PreCall` before it goes upstream, :class:`CallEvent` after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["CallEvent", "PreCall"]


class PreCall(msgspec.Struct, kw_only=True):
    """A request about to be routed (``sidecar_pre_call``)."""

    call_id: str
    """The call's id, as the ``x-litellm-call-id`` answer header and every :class:`CallEvent` carry it."""
    group: str
    """The model group the client asked for (``model``)."""
    capability: str
    """``chat``, ``embedding``, ``completion``... (:data:`sidecar.CAPABILITIES`)."""
    body: dict[str, Any]
    """The OpenAI request body; change it in place, or return a new one."""
    headers: Mapping[str, str]
    """The client's request headers (read only)."""
    stream: bool = False


class CallEvent(msgspec.Struct, omit_defaults=True):
    """One finished upstream call attempt (``sidecar_call_finished``).

    Every attempt of a request gives one event: a failed attempt that was retried or fallen back
    from has ``final`` false; the attempt whose answer (or error) the client got has ``final``
    true. A request refused before any attempt (an unknown model, no deployment free, a pre-call
    hook's refusal) gives one final event with no ``deployment_id``. Durations are seconds.
    Encodes to JSON with ``msgspec.json.encode(event)``. Made by the router; a plugin that makes
    one (a test) passes its fields by keyword: their order may change.
    """

    call_id: str
    requested_group: str
    """The model group the client asked for."""
    group: str
    """The group this attempt was made in (a fallback's differs from ``requested_group``)."""
    capability: str
    stream: bool = False
    deployment_id: str | None = None
    provider: str | None = None
    model: str | None = None
    """The upstream model name (``litellm_params.model`` without its provider prefix)."""
    ok: bool = True
    status: int = 200
    """The HTTP status of this attempt's outcome as the client gets it (200 when it succeeded)."""
    upstream_status: int | None = None
    """The status the upstream answered a failed attempt with (a 500 is a 502 to the client)."""
    error_kind: str | None = None
    """The router's kind of the failure (:data:`sidecar.errors.KINDS`: ``rate_limit``, ``timeout``...)."""
    error_code: str | None = None
    error_message: str | None = None
    """The error's message, credentials masked."""
    attempt: int = 1
    """1 for the first attempt of the request, then 2, 3... across retries and fallbacks."""
    retry: bool = False
    """A retry within its group (after a failed attempt there)."""
    fallback: bool = False
    """An attempt in a fallback group."""
    final: bool = True
    batch: bool = False
    """A member of a batch completion (several comma-separated models)."""
    cooled_down: bool = False
    """This failure put the deployment into a cooldown."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    """USD, from the catalog's (or the deployment's) prices; None when unknown or failed."""
    start_time: float = 0.0
    """When the request arrived (Unix time)."""
    duration: float = 0.0
    """The request's time in the sidecar until this attempt ended (a stream: until its end)."""
    upstream_duration: float = 0.0
    """This attempt's time waiting for the upstream's answer (a stream: its first chunk)."""
    time_to_first_token: float | None = None
    """A stream's time from the request's arrival to its first chunk."""
    remaining_requests: int | None = None
    """What is left of the deployment's ``rpm`` this minute (only when it has one)."""
    remaining_tokens: int | None = None
    """What is left of the deployment's ``tpm`` this minute (only when it has one)."""
    user: str | None = None
    """The body's ``user``."""
    metadata: dict[str, Any] | None = None
    """The body's ``metadata`` (LiteLLM's: tags, trace ids, ...)."""
