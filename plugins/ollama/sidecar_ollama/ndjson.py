"""Reading a newline-delimited JSON stream (Ollama's ``stream: true`` answers) as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from sidecar.upstream import connection_error


async def iter_ndjson_batches(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[list[bytes]]:
    """The non-blank lines of ``resp``, one list per network read (never empty), the last line
    even without its newline. Lines are split here, not by ``StreamReader.readline``, which fails
    on a line longer than twice the read buffer. Transport failures raise ProviderError; whether
    the stream was complete is the caller's to judge (Ollama's last object has ``done: true``).
    """
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
            lines = [line for line in lines if line.strip()]
            if lines:
                yield lines
        last = b"".join(pending).strip()
        if last:
            yield [last]
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise connection_error(exc, provider) from None
    finally:
        resp.release()
