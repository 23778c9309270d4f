"""Helpers for providers that talk HTTP to an upstream: status mapping, SSE reading.

They turn every failure into :class:`sidecar.ProviderError` with the right status: the
upstream's own 4xx, 502 for 5xx, refused connections and broken streams, 504 for timeouts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from functools import lru_cache
from typing import Any, TypeVar

import aiohttp
import msgspec

from sidecar.errors import ProviderError

__all__ = [
    "ErrorParser",
    "connection_error",
    "error_from_body",
    "iter_bytes",
    "iter_ndjson_batches",
    "iter_sse_batches",
    "iter_sse_data",
    "iter_sse_payloads",
    "open_stream",
    "post_json",
    "timeout_for",
]

T = TypeVar("T")
_any_decoder = msgspec.json.Decoder()


class _UpstreamError(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class _UpstreamErrorEnvelope(msgspec.Struct):
    error: _UpstreamError | str | None = None
    message: str | None = None
    detail: Any = None


_envelope_decoder = msgspec.json.Decoder(_UpstreamErrorEnvelope)


def timeout_for(params: Mapping[str, Any], stream: bool) -> aiohttp.ClientTimeout:
    """``litellm_params.timeout`` bounds a whole call; a stream bounds each read instead
    (``stream_timeout``, else ``timeout``), so long answers are not cut."""
    return _timeout(params.get("timeout"), params.get("stream_timeout") if stream else None, stream)


@lru_cache(maxsize=256)
def _timeout(total: Any, read: Any, stream: bool) -> aiohttp.ClientTimeout:
    """ClientTimeout is immutable: one object per distinct setting, not one per request."""
    total = float(total) if total is not None else 600.0
    if stream:
        # (connect: the wait for a free pooled connection plus connecting, bounded as a call is)
        return aiohttp.ClientTimeout(total=None, connect=total, sock_read=float(read) if read else total)
    return aiohttp.ClientTimeout(total=total)


_FORWARDED_ERROR_HEADERS = ("retry-after", "retry-after-ms")


def error_from_body(status: int, body: bytes, provider: str, headers: Mapping[str, str] | None = None) -> ProviderError:
    """A ProviderError carrying the upstream's own message (OpenAI envelope or common variants)
    and the headers a client's back-off reads (``Retry-After``, ``x-ratelimit-*``)."""
    message, type_, param, code = "", None, None, None
    try:
        env = _envelope_decoder.decode(body)
        if isinstance(env.error, _UpstreamError):
            message, type_, param = env.error.message or "", env.error.type, env.error.param
            code = str(env.error.code) if env.error.code is not None else None
        elif isinstance(env.error, str):
            message = env.error
        message = message or env.message or (str(env.detail) if env.detail else "")
    except (msgspec.DecodeError, RecursionError):
        message = body[:500].decode("utf-8", "replace").strip()
    text = f"{provider} upstream answered {status}: {message or 'no message'}"
    err = ProviderError(status, text, param=param, code=code)
    if type_ and err.status == status:
        err.type = type_
    if headers:
        err.headers = {k: v for k, v in headers.items()
                       if k.lower() in _FORWARDED_ERROR_HEADERS or k.lower().startswith("x-ratelimit-")} or None
    return err


def connection_error(exc: BaseException, provider: str) -> ProviderError:
    """The ProviderError for a transport failure (no credentials or URLs in the text)."""
    if isinstance(exc, asyncio.TimeoutError):
        return ProviderError(504, f"{provider} upstream timed out", code="timeout")
    if getattr(exc, "proxy", False) is True:  # the lean client's proxy errors: their text names no host
        return ProviderError(502, f"{provider} upstream could not be reached through the environment's proxy: {exc}",
                             code="upstream_unreachable")
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        # (aiohttp's text names the proxy's address: the status alone, when it answered)
        status = f" (it answered {exc.status})" if isinstance(exc, aiohttp.ClientHttpProxyError) else ""
        return ProviderError(502, f"{provider} upstream could not be reached through the environment's proxy{status}",
                             code="upstream_unreachable")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):  # (the lean client's are aiohttp's kinds too)
        return ProviderError(502, f"{provider} upstream's TLS certificate was not accepted",
                             code="upstream_unreachable")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderError(502, f"{provider} upstream refused the connection or could not be reached",
                             code="upstream_unreachable")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return ProviderError(502, f"{provider} upstream closed the connection mid-response",
                             code="upstream_disconnected")
    return ProviderError(502, f"{provider} upstream request failed ({type(exc).__name__})", code="upstream_error")


ErrorParser = Callable[[int, bytes, str, "Mapping[str, str] | None"], ProviderError]
"""``(status, body, provider, headers) -> ProviderError``: how a provider reads its upstream's
error answers (:func:`error_from_body` reads OpenAI's envelope and common variants)."""


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    decoder: msgspec.json.Decoder,
    provider: str,
    parse_error: ErrorParser | None = None,
) -> Any:
    """POST ``body`` and decode the 2xx answer with ``decoder``; errors as ProviderError (an
    error answer read by ``parse_error``, else :func:`error_from_body`)."""
    try:
        post_read = getattr(session, "post_read", None)  # (the lean client's: one call, not four)
        if post_read is not None:
            status, resp_headers, data = await post_read(url, body, headers, timeout)
        else:
            async with session.post(url, data=body, headers=headers, timeout=timeout) as resp:
                status, resp_headers, data = resp.status, resp.headers, await resp.read()
        if status >= 400:
            raise (parse_error or error_from_body)(status, data, provider, resp_headers)
    except ProviderError:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProviderError(502, f"{provider} upstream sent an answer that is not valid: {exc}",
                            code="bad_upstream_response") from None


async def open_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    provider: str,
    parse_error: ErrorParser | None = None,
) -> aiohttp.ClientResponse:
    """POST a streaming request; returns the open response once the upstream said 2xx (an
    error answer read by ``parse_error``, else :func:`error_from_body`)."""
    try:
        resp = await session.post(url, data=body, headers=headers, timeout=timeout)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    if resp.status >= 400:
        try:
            data = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            data = b""
        finally:
            resp.release()
        raise (parse_error or error_from_body)(resp.status, data, provider, resp.headers)
    return resp


async def _line_blocks(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
    """The complete lines of each network read that ended one, as one bytes (:func:`_complete`),
    then the last line even without its newline. Transport failures raise ProviderError."""
    pending: list[bytes] = []
    try:
        async for data in resp.content.iter_any():
            complete = _complete(pending, data)
            if complete is not None:
                yield complete
        last = b"".join(pending)
        if last:
            yield last
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    finally:
        resp.release()


async def iter_ndjson_batches(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[list[bytes]]:
    """The non-blank lines of a newline-delimited JSON stream (Ollama's, Gemini's without
    ``alt=sse``), one list per network read (never empty), the last line even without its
    newline. Transport failures raise ProviderError; whether the stream was complete is the
    caller's to judge (its framing says, e.g. a last object with ``done: true``)."""
    async with aclosing(_line_blocks(resp, provider)) as blocks:
        async for block in blocks:
            lines = [line for line in block.split(b"\n") if line.strip()]
            if lines:
                yield lines


async def iter_sse_payloads(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of an SSE stream of any provider's events (Anthropic's, Cohere's,
    Gemini's), one list per network read (never empty), up to the end of the body or a
    ``[DONE]``. ``event:`` lines, comments and blank lines are skipped (such payloads name their
    own type). Unlike :func:`iter_sse_batches` it knows no OpenAI rules: whether the stream was
    complete, and which payload is an error, are the caller's to judge."""
    async with aclosing(_line_blocks(resp, provider)) as blocks:
        async for block in blocks:
            payloads = _data_payloads(block)
            if _DONE in payloads:
                payloads = payloads[:payloads.index(_DONE)]
                if payloads:
                    yield payloads
                return
            if payloads:
                yield payloads


async def iter_bytes(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
    """A binary stream's bytes as they arrive (for framings such as AWS's event stream, which the
    provider decodes); transport failures raise ProviderError."""
    try:
        async for data in resp.content.iter_any():
            yield data
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    finally:
        resp.release()


async def iter_sse_batches(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of an SSE response, as they arrive, up to ``[DONE]``: one list per
    network read, so events that arrived together are handled together (a list is never empty).

    An ``error`` payload raises it; a stream that breaks, or ends before any chunk gave a
    ``finish_reason``, raises a 502. A stream whose body ends cleanly after a finish_reason but
    without ``[DONE]`` (some older servers) is taken as complete, as LiteLLM takes it.
    Lines are split here rather than by ``StreamReader.readline``, which fails on an event longer
    than twice the session's read buffer (a big tool call, audio or image delta).
    """
    pending: list[bytes] = []  # the pieces of a line not yet ended
    finished = False  # a chunk carried a finish_reason
    try:
        async for data in resp.content.iter_any():
            data = _complete(pending, data)
            if data is None:
                continue
            payloads = _data_payloads(data)
            done = _DONE in payloads
            if done:
                payloads = payloads[:payloads.index(_DONE)]
            failed = _error_at(payloads, provider) if b'"error"' in data else None
            if failed is not None:
                if failed[0]:
                    yield payloads[:failed[0]]  # the chunks before the error still reach the client
                raise failed[1]
            if not finished:  # (complete events only: a cut last line proves nothing)
                finished = _FINISHED in data or _FINISHED_SPACED in data
            if payloads:
                yield payloads
            if done:
                return
        last = _sse_payload(b"".join(pending), provider)  # a last line without its newline
        if last is _DONE or finished:
            return
    except ProviderError:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    finally:
        resp.release()
    raise ProviderError(502, f"{provider} upstream ended the stream before [DONE]", code="upstream_disconnected")


async def iter_sse_data(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
    """:func:`iter_sse_batches`, one payload at a time."""
    batches = iter_sse_batches(resp, provider)
    try:
        async for payloads in batches:
            for payload in payloads:
                yield payload
    finally:
        await batches.aclose()


def _error_at(payloads: list[bytes], provider: str) -> tuple[int, ProviderError] | None:
    """The index of the first error payload and its ProviderError, if one is an error."""
    for i, payload in enumerate(payloads):
        if b'"error"' in payload and _has_error(payload):  # (never true inside an escaped JSON string)
            return i, error_from_body(500, payload, provider)
    return None


def _complete(pending: list[bytes], data: bytes) -> bytes | None:
    """The complete lines of ``data`` (read after ``pending``, the pieces of a line not yet
    ended) as one bytes ending in a newline, or None when ``data`` ends no line; ``pending``
    keeps the rest. Lines are split here, not by ``StreamReader.readline``, which fails on a
    line longer than twice the read buffer (a big tool call, audio or image delta)."""
    cut = data.rfind(b"\n") + 1
    if not cut:
        pending.append(data)
        return None
    complete = data if cut == len(data) else data[:cut]
    if pending:
        complete = b"".join((*pending, complete))
        pending.clear()
    if cut != len(data):
        pending.append(data[cut:])
    return complete


_DATA_LINE = re.compile(rb"^data:(.*)$", re.MULTILINE)
# (greedy to the line's end, then stripped: a lazy pattern that stops before trailing blanks
# backtracks at every byte, ~15x slower on real events)


def _data_payloads(lines: bytes) -> list[bytes]:
    """The non-blank payloads of the ``data:`` lines in ``lines``, stripped: one regex pass and a
    C-level strip per payload (this runs for every read of every stream)."""
    return [p for p in map(bytes.strip, _DATA_LINE.findall(lines)) if p]


_DONE = b"[DONE]"
_FINISHED = b'"finish_reason":"'
_FINISHED_SPACED = b'"finish_reason": "'  # Python's json.dumps separators


def _sse_payload(line: bytes, provider: str) -> bytes | None:
    """A ``data:`` line's payload (``_DONE`` at the end); None for comments, ``event:``, blanks."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if payload == _DONE:
        return _DONE
    if b'"error"' in payload and _has_error(payload):  # (never true inside an escaped JSON string)
        raise error_from_body(500, payload, provider)
    return payload or None


def _has_error(payload: bytes) -> bool:
    """An error event: OpenAI's ``{"error": {...}}``, or a chunk carrying a top-level ``error``
    (OpenRouter's mid-stream failures, with ``finish_reason: "error"``)."""
    try:
        return bool(_envelope_decoder.decode(payload).error)
    except (msgspec.DecodeError, RecursionError):
        return False
