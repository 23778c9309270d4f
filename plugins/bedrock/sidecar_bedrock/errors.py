"""Bedrock's errors (``x-amzn-ErrorType`` and ``{"message"}`` bodies, stream exception events)
as ProviderErrors with the router's kind."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from sidecar import ProviderError

PROVIDER = "bedrock"
_AUTH = frozenset({"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                   "IncompleteSignatureException", "MissingAuthenticationTokenException",
                   "InvalidClientTokenId", "SignatureDoesNotMatch"})
_BY_TYPE: dict[str, tuple[int, str]] = {
    "ThrottlingException": (429, "rate_limit"),
    "ModelNotReadyException": (429, "rate_limit"),
    "ServiceQuotaExceededException": (429, "rate_limit"),
    "AccessDeniedException": (403, "permission"),
    "ResourceNotFoundException": (404, "not_found"),
    "ValidationException": (400, "bad_request"),
    "ModelTimeoutException": (408, "timeout"),
    "ModelErrorException": (424, "server"),
    "ModelStreamErrorException": (424, "server"),
    "InternalServerException": (500, "server"),
    "ServiceUnavailableException": (503, "server"),
}
_TOO_LONG = ("too long", "input is too long", "prompt is too long", "exceed context limit", "context window",
             "context length", "maximum context", "too many input tokens", "too many tokens")
_FORWARDED = ("retry-after", "retry-after-ms")


class _Body(msgspec.Struct):
    message: str | None = None
    Message: str | None = None  # (some AWS front ends capitalise it)


_body = msgspec.json.Decoder(_Body)


def error_type(value: str | None) -> str:
    """``ThrottlingException:http://internal.amazon.com/...`` -> ``ThrottlingException``."""
    return (value or "").split(":", 1)[0].split("#")[-1].strip()


def message_of(payload: bytes) -> str:
    try:
        body = _body.decode(payload)
        return body.message or body.Message or ""
    except (msgspec.DecodeError, RecursionError):
        return payload[:500].decode("utf-8", "replace").strip()


def bedrock_error(status: int, type_name: str, message: str,
                  headers: Mapping[str, str] | None = None) -> ProviderError:
    """The ProviderError for an AWS error of ``type_name`` (or, unnamed, of ``status``)."""
    kind = None
    if type_name in _AUTH or (status == 403 and "signature" in message.lower()):
        status, kind = 401, "auth"  # (AWS answers 403; the client's credentials are wrong: OpenAI's 401)
    elif type_name in _BY_TYPE:
        status, kind = _BY_TYPE[type_name]
    if status == 400 and any(w in message.lower() for w in _TOO_LONG):
        kind = "context_window"
    code = (type_name[:1].lower() + type_name[1:]) if type_name else None
    text = f"{PROVIDER} upstream answered {status}{f' {type_name}' if type_name else ''}: {message or 'no message'}"
    err = ProviderError(status, text, kind=kind or _kind_of(status), code=code,
                        param="messages" if kind == "context_window" else None)
    if headers:
        kept = {k: v for k, v in headers.items() if k.lower() in _FORWARDED or k.lower().startswith("x-ratelimit-")}
        err.headers = kept or None
    return err


def _kind_of(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status in (408, 504):
        return "timeout"
    if status == 401:
        return "auth"
    if status == 403:
        return "permission"
    if status == 404:
        return "not_found"
    return "server" if status >= 500 else "bad_request"


def http_error(status: int, payload: bytes, provider: str = PROVIDER,
               headers: Mapping[str, str] | None = None) -> ProviderError:
    """An HTTP error answer of the Bedrock runtime (the ``parse_error`` of :func:`sidecar.open_stream`)."""
    return bedrock_error(status, error_type((headers or {}).get("x-amzn-ErrorType")), message_of(payload), headers)


STREAM_EXCEPTIONS = {"throttlingException": "ThrottlingException",
                     "modelStreamErrorException": "ModelStreamErrorException",
                     "internalServerException": "InternalServerException",
                     "validationException": "ValidationException",
                     "serviceUnavailableException": "ServiceUnavailableException"}


def stream_exception(exception_type: str, payload: bytes) -> ProviderError:
    """A ConverseStream ``exception`` event (``:exception-type`` ``throttlingException``...)."""
    name = STREAM_EXCEPTIONS.get(exception_type, exception_type[:1].upper() + exception_type[1:])
    status = _BY_TYPE.get(name, (500, "server"))[0]
    return bedrock_error(status, name, message_of(payload))
