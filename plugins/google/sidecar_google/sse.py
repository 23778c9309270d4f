"""Reading ``streamGenerateContent?alt=sse``: each ``data:`` line is a whole
GenerateContentResponse; there is no ``[DONE]``, so the caller judges completeness (a candidate
gave a ``finishReason``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from sidecar import connection_error


async def iter_sse_events(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of ``resp``, one list per network read (never empty), the last line
    even without its newline. Lines are split here, not by ``StreamReader.readline``, which fails
    on a line longer than twice the read buffer (a big function call). Transport failures raise
    ProviderError."""
    pending: list[bytes] = []
    try:
        async for data in resp.content.iter_any():
            if b"\n" not in data:
                pending.append(data)
                continue
            if pending:
                data = b"".join((*pending, data))
            lines = data.split(b"\n")
            pending = [lines.pop()]
            payloads = [p for p in (_payload(line) for line in lines) if p]
            if payloads:
                yield payloads
        last = _payload(b"".join(pending))
        if last:
            yield [last]
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    finally:
        resp.release()


def _payload(line: bytes) -> bytes | None:
    """A ``data:`` line's payload; None for comments, other fields and blank lines."""
    if not line.startswith(b"data:"):
        return None
    return line[5:].strip() or None
