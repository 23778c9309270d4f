"""How the fake upstreams write their answers on the wire: SSE streams (OpenAI's framing and
other legal framings) and answers cut mid-way."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

SLOW_SECONDS = 5.0
"""How long a slow or stalling fake waits: longer than the tests' ``timeout``."""
LONG_SECONDS = 30.0
"""How long a long stream lasts: longer than any wait on it, so only a client leaving ends it early."""

_encode = msgspec.json.Encoder().encode


async def sse(request: web.Request, events: list[Any], done: bool = True,
              pause_after: int | None = None, tail: bytes = b"") -> web.StreamResponse:
    """OpenAI's framing: one ``data:`` event per item (dicts encoded, bytes as they are), then
    ``[DONE]``; a pause of ``SLOW_SECONDS`` before item ``pause_after``; ``tail`` sent raw last."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    for i, event in enumerate(events):
        if i == pause_after:
            await asyncio.sleep(SLOW_SECONDS)
        await resp.write(b"data: " + (event if isinstance(event, bytes) else _encode(event)) + b"\n\n")
    if done:
        await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof(tail)
    return resp


async def odd_framing(request: web.Request, events: list[Any]) -> web.StreamResponse:
    """Legal SSE that is not OpenAI's exact framing: CRLF line ends, ``: ping`` comments,
    ``event:``/``id:`` lines, ``data:`` without a space, events split across writes mid-JSON,
    and a last ``data: [DONE]`` without its newline."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(b": ping\r\n\r\n")
    for i, event in enumerate(events):
        raw = (b"event: message\r\nid: %d\r\ndata:" % i) + _encode(event) + b"\r\n\r\n"
        half = len(raw) // 2
        await resp.write(raw[:half])
        await resp.write(raw[half:])
    await resp.write(b"data: [DONE]")
    await resp.write_eof()
    return resp

async def cut_sse(request: web.Request, events: list[Any]) -> web.StreamResponse:
    """Send the first events, then drop the connection: no ``[DONE]``, no chunked trailer."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    for event in events[:2]:
        await resp.write(b"data: " + _encode(event) + b"\n\n")
    request.transport.close()
    return resp

async def cut_json(request: web.Request, body: bytes) -> web.StreamResponse:
    """Promise the whole body in Content-Length, send half, drop the connection."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    request.transport.close()
    return resp
