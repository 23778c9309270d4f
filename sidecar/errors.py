"""Errors that become OpenAI's error envelope ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = [
    "KINDS",
    "ProviderError",
    "SidecarError",
    "classify",
]

_TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


class ErrorBody(msgspec.Struct):
    """The inner object of OpenAI's error envelope (all four fields always present)."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class SidecarError(Exception):
    """An error answered to the client with ``status`` in OpenAI's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPE_FOR_STATUS.get(status, "api_error")
        self.headers: dict[str, str] | None = None
        """Headers to answer with (an upstream's ``Retry-After`` on a 429, say)."""

    def body(self) -> ErrorEnvelope:
        return ErrorEnvelope(ErrorBody(self.message, self.type, self.param, self.code))


KINDS = ("bad_request", "auth", "permission", "not_found", "rate_limit", "timeout", "server",
         "context_window", "content_policy")
"""The router's error kinds: every provider failure has one, and retries, cooldowns and
fallbacks are decided by it."""


class ProviderError(SidecarError):
    """Raised by a provider for an upstream failure.

    ``status`` is what the upstream answered; :func:`client_status` maps it to what the client
    sees: 400/401/403/404/409/413/422/429 keep their meaning, 408 and timeouts become 504, other
    failures (5xx, refused connections, broken streams) 502. ``kind`` (one of :data:`KINDS`) is
    what the router acts on; when a plugin gives none it is read from the status, code and
    message (:func:`classify`). ``headers`` are the upstream's answer headers a client's
    back-off reads (``Retry-After``, ``retry-after-ms``, ``x-ratelimit-*``).
    """

    def __init__(self, status: int, message: str, *, kind: str | None = None,
                 headers: Mapping[str, str] | None = None, **kw: str | None) -> None:
        mapped = client_status(status)
        if mapped != status and kw.get("type") is None:
            kw["type"] = _TYPE_FOR_STATUS[mapped]
        super().__init__(mapped, message, **kw)  # type: ignore[arg-type]
        self.upstream_status = status
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}; expected one of {', '.join(KINDS)}")
        self.kind = kind or classify(status, kw.get("code"), message)
        if headers:
            self.headers = dict(headers)


_CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "context_window_exceeded", "string_above_max_length"})
_CONTEXT_WINDOW_WORDS = ("maximum context length", "context length", "context window", "prompt is too long",
                         "input is too long", "too many tokens", "reduce the length of the messages")
_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "content_filtered",
                                   "responsible_ai_policy_violation"})
_CONTENT_POLICY_WORDS = ("content policy", "content_policy", "content management policy", "safety system",
                         "content filter")


def classify(status: int, code: str | None, message: str) -> str:
    """The error kind of an upstream failure, from its status, code and message (OpenAI's codes
    and wording, which most OpenAI-compatible servers copy)."""
    if status == 429:
        return "rate_limit"
    if status in (408, 504) or code == "timeout":
        return "timeout"
    if status == 401:
        return "auth"
    if status == 403:
        return "permission"
    if status == 404:
        return "not_found"
    if status >= 500:
        return "server"
    text = message.lower()
    if code in _CONTEXT_WINDOW_CODES or any(w in text for w in _CONTEXT_WINDOW_WORDS):
        return "context_window"
    if code in _CONTENT_POLICY_CODES or any(w in text for w in _CONTENT_POLICY_WORDS):
        return "content_policy"
    return "bad_request"


_PASSED_THROUGH = frozenset({400, 401, 403, 404, 409, 413, 422, 429})


def client_status(upstream_status: int) -> int:
    """The status the client gets for an upstream's ``upstream_status``."""
    if upstream_status in _PASSED_THROUGH:
        return upstream_status
    if upstream_status in (408, 504):
        return 504
    return 502


def bad_request(message: str, param: str | None = None, code: str | None = None) -> SidecarError:
    return SidecarError(400, message, param=param, code=code)
