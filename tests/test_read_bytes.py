"""``sidecar.http.read_bytes``: a request body that has all arrived is taken at once; one still
arriving is awaited; either way ``request.read()`` then gives the same bytes, and the size limit
holds (413)."""

from __future__ import annotations

import asyncio
import gzip

from aiohttp import web

from sidecar.http import read_bytes


async def _server(aiohttp_server, max_size: int = 1024, read_first: bool = False):
    async def echo(request: web.Request) -> web.Response:
        if read_first:
            await request.read()
        first = await read_bytes(request)
        again = await request.read()
        assert again == first
        return web.Response(body=b"%d:" % len(first) + first)

    app = web.Application(client_max_size=max_size)
    app.router.add_post("/", echo)
    return await aiohttp_server(app)


async def _post(server, parts: list[bytes], length: int | None, head: bytes = b"") -> bytes:
    """POST ``parts`` (a pause between them), ``Content-Length: length`` (None: chunked), ``head``
    more header lines; the raw answer."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    framing = b"Transfer-Encoding: chunked\r\n" if length is None else b"Content-Length: %d\r\n" % length
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + framing + head + b"\r\n")
    for part in parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await reader.read()
    writer.close()
    return answer


async def test_a_whole_body_and_one_still_arriving_read_the_same(aiohttp_server):
    server = await _server(aiohttp_server)
    whole = await _post(server, [b'{"a": 1}'], 8)
    assert whole.startswith(b"HTTP/1.1 200") and whole.endswith(b'\r\n\r\n8:{"a": 1}')
    pieces = await _post(server, [b'{"a":', b' 1}'], 8)  # (the handler runs before the rest arrives)
    assert pieces.startswith(b"HTTP/1.1 200") and pieces.endswith(b'\r\n\r\n8:{"a": 1}')
    empty = await _post(server, [], 0)
    assert empty.endswith(b"\r\n\r\n0:")


async def test_the_size_limit_holds_both_ways(aiohttp_server):
    server = await _server(aiohttp_server, max_size=10)
    for parts in ([b"x" * 11], [b"x" * 6, b"x" * 5]):
        answer = await _post(server, parts, 11)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


async def test_compressed_chunked_and_already_read_bodies(aiohttp_server):
    server = await _server(aiohttp_server, max_size=4096)
    packed = gzip.compress(b'{"a": "' + b"x" * 1000 + b'"}')
    answer = await _post(server, [packed], len(packed), head=b"Content-Encoding: gzip\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'\r\n\r\n1009:{"a": "' + b"x" * 1000 + b'"}')
    chunks = b"4\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n"  # (three chunks in one write)
    answer = await _post(server, [chunks], None)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'\r\n\r\n8:{"a": 1}')
    server = await _server(aiohttp_server, read_first=True)  # (read() first: the same bytes again)
    answer = await _post(server, [b'{"a": 1}'], 8)
    assert answer.endswith(b'\r\n\r\n8:{"a": 1}')


async def test_no_size_limit_means_none(aiohttp_server):
    server = await _server(aiohttp_server, max_size=0)  # (aiohttp's read(): 0 is no limit)
    answer = await _post(server, [b"x" * 5000], 5000)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"5000:" + b"x" * 5000)
