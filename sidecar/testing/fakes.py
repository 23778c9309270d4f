"""Fake upstreams for plugin tests: an aiohttp app that records what it received, and the ways
an upstream writes its answers on the wire (SSE, newline-delimited JSON, a stream or a body cut
mid-way).

    class MyFake(FakeUpstream):
        def add_routes(self, router):
            router.add_post("/v1/generate", self.generate)

        async def generate(self, request):
            got = await self.record(request)          # method, path, query, headers, JSON body
            if got.body["model"] == "cut":
                return await ndjson(request, LINES, cut_after=2)
            return await ndjson(request, LINES)

    fake = await start(aiohttp_server, MyFake(api_key="k-123"))
    fake.root_url                                     # http://127.0.0.1:PORT
    fake.last.body                                    # the JSON the fake got last
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web
from multidict import CIMultiDict

__all__ = ["FakeUpstream", "Received", "cut", "cut_json", "ndjson", "sse", "start"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass
class Received:
    """One request a fake got: ``body`` is its decoded JSON (None when empty)."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any


class FakeUpstream:
    """An upstream served in-process: subclasses add routes; handlers call :meth:`record` first."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.received: list[Received] = []
        self.server: Any = None
        self.app = web.Application()
        self.add_routes(self.app.router)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return str(self.server.make_url("")).rstrip("/")

    @property
    def base_url(self) -> str:
        """``root_url + "/v1"`` (where OpenAI-compatible servers live)."""
        return str(self.server.make_url("/v1"))

    @property
    def last(self) -> Received:
        assert self.received, "the fake upstream received no request"
        return self.received[-1]

    async def record(self, request: web.Request) -> Received:
        """Read and keep ``request`` (its body decoded as JSON when there is one)."""
        raw = await request.read()
        body = _decode(raw) if raw and request.content_type != "multipart/form-data" else None
        got = Received(request.method, request.path, dict(request.query), CIMultiDict(request.headers), body)
        self.received.append(got)
        return got

    def presented_key(self, request: web.Request) -> str | None:
        """The key of an ``Authorization: Bearer`` header, if any."""
        auth = request.headers.get("Authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def hits(self, model: str) -> int:
        """How many requests for the upstream ``model`` arrived."""
        return sum(1 for r in self.received if isinstance(r.body, dict) and r.body.get("model") == model)


async def start(aiohttp_server: Any, fake: FakeUpstream) -> FakeUpstream:
    """Serve ``fake`` on 127.0.0.1 with pytest-aiohttp's ``aiohttp_server`` (no access log, so
    captured logs are the gateway's own)."""
    fake.server = await aiohttp_server(fake.app, access_log=None)
    return fake


def _bytes(item: Any) -> bytes:
    return item if isinstance(item, bytes) else _encode(item)


def cut(request: web.Request) -> None:
    """Drop the connection now: the reader sees the body end mid-way (no chunked trailer)."""
    assert request.transport is not None
    request.transport.close()


async def sse(request: web.Request, events: Iterable[Any], *, done: bool = True,
              event_name: Callable[[Any], str] | None = None, cut_after: int | None = None,
              pause_after: int | None = None, pause: float = 0.0, tail: bytes = b"",
              content_type: str = "text/event-stream; charset=utf-8") -> web.StreamResponse:
    """An SSE answer: one ``data:`` event per item (dicts encoded as JSON, bytes as they are),
    named by ``event_name(item)`` (an ``event:`` line, as Anthropic and Cohere send) when given;
    then ``data: [DONE]`` (OpenAI's end) unless ``done`` is false, and ``tail`` raw. With
    ``cut_after``, the connection drops after that many events instead; with ``pause_after``,
    ``pause`` seconds pass before that event."""
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    for i, event in enumerate(events):
        if i == cut_after:
            cut(request)
            return resp
        if i == pause_after:
            await asyncio.sleep(pause)
        name = b"event: " + event_name(event).encode() + b"\n" if event_name is not None else b""
        await resp.write(name + b"data: " + _bytes(event) + b"\n\n")
    if cut_after is not None:
        cut(request)
        return resp
    if done:
        await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof(tail)
    return resp


async def ndjson(request: web.Request, lines: Iterable[Any], *, cut_after: int | None = None,
                 content_type: str = "application/x-ndjson") -> web.StreamResponse:
    """A newline-delimited JSON answer, one object a line (Ollama's framing, Gemini's without
    ``alt=sse``); with ``cut_after``, the connection drops after that many lines."""
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    for i, line in enumerate(lines):
        if i == cut_after:
            break
        await resp.write(_bytes(line) + b"\n")
    if cut_after is not None:
        cut(request)
        return resp
    await resp.write_eof()
    return resp


async def cut_json(request: web.Request, body: bytes) -> web.StreamResponse:
    """Promise the whole JSON ``body`` in Content-Length, send half, drop the connection."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    cut(request)
    return resp
