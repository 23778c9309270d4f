"""Anthropic's errors (``{"type": "error", "error": {"type", "message"}}``, as an HTTP answer or
as a stream's ``error`` event) as ProviderErrors with the router's kind.

Overload (``overloaded_error``, HTTP 529) is a 429 ``rate_limit`` as a rate limit is: the
deployment is busy, another may not be; "prompt is too long" is ``context_window``.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from sidecar import ProviderError, error_from_body

STATUS_OF_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}
"""Anthropic's error types and the HTTP status each comes with."""
_KIND_OF_TYPE = {"overloaded_error": "rate_limit", "rate_limit_error": "rate_limit", "billing_error": "permission"}
_FORWARDED = ("retry-after", "retry-after-ms")


class ErrorInfo(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Envelope(msgspec.Struct):
    error: ErrorInfo | None = None


_envelope = msgspec.json.Decoder(_Envelope)


def error_of(info: ErrorInfo, status: int | None, provider: str, *, event: bool = False,
             headers: Mapping[str, str] | None = None) -> ProviderError:
    """The ProviderError for Anthropic's error ``info`` (``status`` is the HTTP one, if any)."""
    status = status or STATUS_OF_TYPE.get(info.type, 500)
    where = "sent an error event" if event else f"answered {status}"
    text = f"{provider} upstream {where}: {info.type or 'error'}: {info.message or 'no message'}"
    kind = _KIND_OF_TYPE.get(info.type)
    client = 429 if info.type == "overloaded_error" else status
    err = ProviderError(client, text, code=info.type or None, kind=kind)
    err.upstream_status = status
    if headers:
        forwarded = {k: v for k, v in headers.items()
                     if k.lower() in _FORWARDED or k.lower().startswith("x-ratelimit-")}
        err.headers = forwarded or None
    return err


def error_from_answer(status: int, body: bytes, provider: str, headers: Mapping[str, str] | None = None) -> ProviderError:
    """The ProviderError for an HTTP error answer; one not in Anthropic's shape (a proxy's page)
    is read as the core reads any upstream's."""
    try:
        info = _envelope.decode(body).error
    except (msgspec.DecodeError, RecursionError):
        info = None
    if info is None:
        return error_from_body(status, body, provider, headers)
    return error_of(info, status, provider, headers=headers)
