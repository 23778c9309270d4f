"""``exception_class`` label values: the exception LiteLLM would have raised, as it names them.

LiteLLM labels a failure with its exception's class, prefixed by the provider when it has one
(``Openai.RateLimitError``, ``Anthropic.InternalServerError``); the sidecar's error kinds map
onto those classes (which are OpenAI's SDK names, plus a few of LiteLLM's own).
"""

from __future__ import annotations

__all__ = ["exception_class"]

_BY_KIND = {
    "bad_request": "BadRequestError",
    "auth": "AuthenticationError",
    "permission": "PermissionDeniedError",
    "not_found": "NotFoundError",
    "rate_limit": "RateLimitError",
    "timeout": "Timeout",
    "context_window": "ContextWindowExceededError",
    "content_policy": "ContentPolicyViolationError",
}
_SERVER_BY_STATUS = {500: "InternalServerError", 502: "BadGatewayError", 503: "ServiceUnavailableError"}
_BY_STATUS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
              408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError", 504: "Timeout"}
_CONNECTION_CODES = frozenset({"upstream_unreachable", "upstream_disconnected", "upstream_error"})
"""The sidecar's codes for a transport failure (LiteLLM's ``APIConnectionError``)."""


def exception_class(provider: str | None, kind: str | None, status: int, upstream_status: int | None,
                    code: str | None) -> str:
    """The ``exception_class`` of a failure: ``kind`` is the router's (None for the sidecar's own
    errors, named by ``status``), ``upstream_status`` the upstream's answer, if it answered."""
    status = upstream_status or status
    if code in _CONNECTION_CODES:
        name = "APIConnectionError"
    elif kind == "server" or (kind is None and status >= 500 and status not in _BY_STATUS):
        name = _SERVER_BY_STATUS.get(status, "APIError")
    elif kind == "bad_request" and status == 422:
        name = "UnprocessableEntityError"
    elif kind is not None:
        name = _BY_KIND.get(kind, "APIError")
    else:
        name = _BY_STATUS.get(status, "BadRequestError" if 400 <= status < 500 else "APIError")
    return f"{provider[0].upper()}{provider[1:]}.{name}" if provider else name
