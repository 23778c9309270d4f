"""How the fake upstreams write their answers on the wire: SSE streams (OpenAI's framing and
other legal framings) and answers cut mid-way, on the kit's writers (:mod:`sidecar.testing.fakes`)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from sidecar import testing as kit

SLOW_SECONDS = 5.0
"""How long a slow or stalling fake waits: longer than the tests' ``timeout``."""
LONG_SECONDS = 30.0
"""How long a long stream lasts: longer than any wait on it, so only a client leaving ends it early."""

_encode = msgspec.json.Encoder().encode


async def sse(request: web.Request, events: list[Any], done: bool = True,
              pause_after: int | None = None, tail: bytes = b"") -> web.StreamResponse:
    """OpenAI's framing (the kit's :func:`sidecar.testing.sse`): one ``data:`` event per item,
    then ``[DONE]``; a pause of ``SLOW_SECONDS`` before item ``pause_after``; ``tail`` sent raw last."""
    return await kit.sse(request, events, done=done, pause_after=pause_after, pause=SLOW_SECONDS, tail=tail)


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


async def cut_sse(request: web.Request, events: list[Any], after: int = 2) -> web.StreamResponse:
    """Send the first ``after`` events, then drop the connection: no ``[DONE]``, no chunked trailer."""
    return await kit.sse(request, events, cut_after=after)


cut_json = kit.cut_json
