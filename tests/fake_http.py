"""A raw HTTP/1.1 server on asyncio streams for the lean client's tests (tests/test_httpclient.py):
each test says what a connection does, including misbehaving (stalling, cutting a body short,
closing a kept-alive connection), and the server counts connections and their peak."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    line: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the connection (its body read, Content-Length or chunked), None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *rest = head[:-4].decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in h.split(":", 1)) for h in rest]
    req = Request(line, headers)  # type: ignore[arg-type]
    if req.header("Content-Length"):
        req.body = await reader.readexactly(int(req.header("Content-Length")))
    elif (req.header("Transfer-Encoding") or "").lower() == "chunked":
        parts = []
        while size := int((await reader.readline()).strip(), 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readline()
        req.body = b"".join(parts)
    return req


def answer(status: int = 200, body: bytes = b"", headers: tuple[tuple[str, str], ...] = (),
           length: bool = True, version: str = "1.1") -> bytes:
    """An answer's bytes (with Content-Length unless ``length`` is False)."""
    lines = [f"HTTP/{version} {status} {'OK' if status < 400 else 'Error'}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawServer:
    """Runs ``handle(server, reader, writer, n)`` for the n-th connection (from 1); counts
    connections and the most open at once; :meth:`read` reads a request and keeps it in ``requests``."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.connections = 0
        self.open = 0
        self.peak = 0
        self.closed = 0
        self.requests: list[Request] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task] = set()

    async def start(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> RawServer:
        self.server = await asyncio.start_server(self._serve, host, 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            await self.handle(self, reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # close() ends a stalling handler; asyncio logs a cancelled one
            pass
        finally:
            self.open -= 1
            self.closed += 1
            writer.close()
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def read(self, reader: asyncio.StreamReader) -> Request | None:
        req = await read_request(reader)
        if req is not None:
            self.requests.append(req)
        return req

    async def close(self) -> None:
        """Stop listening and end the handlers still running (a stalling one sleeps)."""
        if self.server is not None:
            self.server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.server.wait_closed()


def keep_alive(respond: Callable[[Request, int], bytes]) -> Handler:
    """A handler answering every request on the connection with ``respond(request, n)``."""
    async def handle(srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while (req := await srv.read(reader)) is not None:
            writer.write(respond(req, n))
            await writer.drain()
    return handle
