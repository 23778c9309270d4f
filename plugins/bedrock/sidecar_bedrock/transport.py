"""Signed POSTs to the Bedrock runtime over the app's aiohttp session, and its event streams
read as they arrive (decoded by botocore's ``EventStreamBuffer``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import yarl

from sidecar import ProviderError, connection_error
from sidecar import open_stream as _open_stream
from sidecar_bedrock.errors import PROVIDER, http_error, stream_exception


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
               timeout: aiohttp.ClientTimeout) -> tuple[bytes, Any]:
    """POST and read the whole 2xx answer: its body and headers; errors as ProviderError."""
    try:
        async with session.post(yarl.URL(url, encoded=True), data=body, headers=headers, timeout=timeout) as resp:
            data = await resp.read()
            if resp.status >= 400:
                raise http_error(resp.status, data, PROVIDER, resp.headers)
            return data, resp.headers
    except ProviderError:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, PROVIDER) from None


async def open_stream(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
                      timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
    """POST a ConverseStream request; the open response once Bedrock said 2xx."""
    return await _open_stream(session, yarl.URL(url, encoded=True), body, headers, timeout, PROVIDER,
                              parse_error=http_error)


async def iter_events(resp: aiohttp.ClientResponse) -> AsyncIterator[list[tuple[str, bytes]]]:
    """The ``(:event-type, payload)`` of each event message, one list per network read (never
    empty). An ``exception`` message raises its ProviderError, after the events before it in the
    same read were yielded; a frame that does not decode is a 502."""
    from botocore.eventstream import EventStreamBuffer, ParserError  # (loaded with the first signature)

    buffer = EventStreamBuffer()
    try:
        async for data in resp.content.iter_any():
            buffer.add_data(data)
            events: list[tuple[str, bytes]] = []
            for message in buffer:
                headers = message.headers
                kind = headers.get(":message-type")
                if kind == "event":
                    events.append((headers.get(":event-type", ""), message.payload))
                    continue
                if events:
                    yield events
                if kind == "exception":
                    raise stream_exception(str(headers.get(":exception-type", "")), message.payload)
                raise ProviderError(502, f"{PROVIDER} upstream sent a stream error: "
                                         f"{headers.get(':error-code', 'unknown')} {headers.get(':error-message', '')}",
                                    code="upstream_error", kind="server")
            if events:
                yield events
    except ParserError as exc:
        raise ProviderError(502, f"{PROVIDER} upstream sent an event-stream frame that does not decode "
                                 f"({type(exc).__name__})", code="bad_upstream_response", kind="server") from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, PROVIDER) from None
    finally:
        resp.release()
