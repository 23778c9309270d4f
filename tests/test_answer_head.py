"""A proxied call's answer writes its head in one piece (``sidecar.http.OnePieceHead``): the head
aiohttp would write, over HTTP/1.1 keep-alive, for plain answers and SSE streams. HTTP/1.0,
``Connection: close`` and an app with an ``on_response_prepare`` signal take aiohttp's own path,
with the same headers."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web
from gateway_helpers import assert_valid_stream
from openai_helpers import KEY, dep, user
from openai_spec import assert_valid

import pytest
from sidecar import hookimpl
from sidecar.http import Answer, OnePieceHead
from sidecar.plugins import get_plugin_manager

BODY = msgspec.json.encode({"model": "m", "messages": user("hi")})
STREAM = msgspec.json.encode({"model": "m", "messages": user("hi"), "stream": True})
OWN_HEADERS = {"content-type", "content-length", "date", "server", "x-litellm-call-id", "x-litellm-model-id",
               "x-litellm-model-group", "x-litellm-attempted-retries", "x-litellm-max-retries",
               "x-litellm-attempted-fallbacks", "x-litellm-response-duration-ms",
               "x-litellm-overhead-duration-ms", "x-litellm-response-cost"}


def _request(version: bytes = b"1.1", close: bool = False, body: bytes = BODY) -> bytes:
    return (b"POST /v1/chat/completions HTTP/" + version + b"\r\nHost: sidecar\r\nContent-Type: application/json\r\n"
            + (b"Connection: close\r\n" if close else b"") + b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, list[str]], bytes]:
    """One answer read off the socket: its status line, its headers (lower-case names, every
    value), its body (by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].decode().split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.lower(), []).append(value.strip())
    if headers.get("transfer-encoding") == ["chunked"]:
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        assert await reader.readexactly(2) == b"\r\n"
        return status.encode(), headers, body
    body = await reader.readexactly(int(headers["content-length"][0]))
    return status.encode(), headers, body


def _check(headers: dict[str, list[str]], body: bytes) -> None:
    """Each of the answer's headers once, Content-Length the body's, the body OpenAI's answer."""
    assert OWN_HEADERS <= headers.keys(), sorted(headers)
    assert all(len(values) == 1 for values in headers.values()), headers
    assert headers["content-type"] == ["application/json"]
    assert headers["content-length"] == [str(len(body))]
    assert_valid(msgspec.json.decode(body), "CreateChatCompletionResponse")


@pytest.fixture
def aiohttp_heads(monkeypatch) -> list[OnePieceHead]:
    """The answers whose head aiohttp prepared (its own path), in order."""
    prepared: list[OnePieceHead] = []
    own = web.StreamResponse._prepare_headers

    async def counted(self: web.StreamResponse) -> None:
        if isinstance(self, OnePieceHead):
            prepared.append(self)
        await own(self)

    monkeypatch.setattr(web.StreamResponse, "_prepare_headers", counted)
    return prepared


async def test_keep_alive_answers_are_whole_and_the_connection_serves_on(make_client, openai_fake, aiohttp_heads):
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url)]})
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        seen = []
        for _ in range(3):
            writer.write(_request())
            status, headers, body = await _answer(reader)
            assert status == b"HTTP/1.1 200 OK"
            _check(headers, body)
            assert "connection" not in headers  # (keep-alive is HTTP/1.1's default)
            seen.append(headers["x-litellm-call-id"][0])
        assert len(set(seen)) == 3
        writer.write(_request())  # two requests in one write: answered in order, each whole
        writer.write(_request())
        for _ in range(2):
            status, headers, body = await _answer(reader)
            assert status == b"HTTP/1.1 200 OK"
            _check(headers, body)
    finally:
        writer.close()
    assert len(openai_fake.received) == 5
    assert aiohttp_heads == []  # (every head written in one piece)


async def test_a_stream_head_is_whole_and_the_connection_serves_on(make_client, openai_fake, aiohttp_heads,
                                                                   monkeypatch):
    spread: list[OnePieceHead] = []  # (aiohttp prepares a stream again once its handler returns: nothing to do)
    own_spread = OnePieceHead._spread_head
    monkeypatch.setattr(OnePieceHead, "_spread_head", lambda self: (spread.append(self), own_spread(self))[1])
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url)]})
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        for body in (STREAM, BODY, STREAM):
            writer.write(_request(body=body))
            status, headers, answer = await _answer(reader)
            assert status == b"HTTP/1.1 200 OK"
            if body is BODY:
                _check(headers, answer)
                continue
            assert all(len(values) == 1 for values in headers.values()), headers
            assert (OWN_HEADERS - {"content-type", "content-length", "x-litellm-response-cost"}
                    | {"transfer-encoding", "cache-control", "x-accel-buffering"}) <= headers.keys(), sorted(headers)
            assert headers["content-type"] == ["text/event-stream"] and "content-length" not in headers
            assert_valid_stream(answer)
    finally:
        writer.close()
    assert aiohttp_heads == [] and spread == []


async def test_http10_and_connection_close_get_the_same_headers_from_aiohttp(make_client, openai_fake, aiohttp_heads):
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url)]})
    for version, close in ((b"1.0", False), (b"1.1", True)):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(_request(version, close))
        status, headers, body = await _answer(reader)
        assert status == b"HTTP/" + version + b" 200 OK"
        _check({name: values for name, values in headers.items() if name != "connection"}, body)
        assert await reader.read() == b""  # (the sidecar closed the connection, as asked)
        writer.close()
    reader, writer = await asyncio.open_connection(client.host, client.port)  # a stream over HTTP/1.0
    writer.write(_request(b"1.0", body=STREAM))
    head, _, events = (await reader.read()).partition(b"\r\n\r\n")  # (its end: the connection closes)
    writer.close()
    assert head.startswith(b"HTTP/1.0 200 OK\r\n") and b"\r\nContent-Type: text/event-stream\r\n" in head
    assert b"\r\nx-litellm-call-id: " in head and b"Transfer-Encoding" not in head
    assert_valid_stream(events)
    assert len(aiohttp_heads) == 3


class _Stamp:
    """A plugin whose ``on_response_prepare`` signal reads the answer's headers and adds one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def sidecar_configure(self, app: web.Application, pm) -> None:
        async def stamp(request: web.Request, response: web.StreamResponse) -> None:
            self.seen.append(response.headers.get("x-litellm-model-group", ""))
            response.headers["x-stamped"] = "yes"

        app.on_response_prepare.append(stamp)


async def test_an_on_response_prepare_signal_sees_and_changes_the_answer_headers(make_client, openai_fake,
                                                                                 aiohttp_heads):
    plugin = _Stamp()
    pm = get_plugin_manager()
    pm.register(plugin)
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url)]}, pm=pm)
    resp = await client.post("/v1/chat/completions", data=BODY, headers={"Authorization": f"Bearer {KEY}",
                                                                         "Content-Type": "application/json"})
    assert resp.status == 200
    assert resp.headers["x-stamped"] == "yes"
    assert plugin.seen == ["m"] and len(aiohttp_heads) == 1
    headers = {name.lower(): [value] for name, value in resp.headers.items()}
    _check({name: values for name, values in headers.items() if name != "x-stamped"}, await resp.read())


async def test_a_line_break_in_a_header_value_never_splits_the_answer(aiohttp_server):
    async def handler(request: web.Request) -> web.StreamResponse:
        return Answer({"x-litellm-model-group": "g\r\nx-injected: yes"}, b"{}")

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    for _ in range(2):  # (aiohttp refuses the header and drops the connection; the server serves on)
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read()
        writer.close()
        assert b"x-injected" not in answer and not answer.startswith(b"HTTP/1.1 200"), answer


def _middleware_app(change) -> web.Application:
    """An app whose one route answers with :class:`Answer`, behind a middleware that runs
    ``change(response)`` before aiohttp prepares it."""

    @web.middleware
    async def changing(request: web.Request, handler):
        response = await handler(request)
        change(response)
        return response

    async def handler(request: web.Request) -> web.StreamResponse:
        return Answer({"x-litellm-model-group": "g"}, b"{}")

    app = web.Application(middlewares=[changing])
    app.router.add_get("/", handler)
    return app


async def test_what_a_middleware_changes_is_sent_as_aiohttp_would(aiohttp_client, aiohttp_heads):
    def set_header(response):
        response.headers["x-litellm-model-group"] = "mine"  # (a middleware's value wins)
        response.headers["x-extra"] = "1"

    def read_headers(response):
        assert response.headers["Content-Type"] == "application/json"

    cases = [(set_header, 200, {"x-litellm-model-group": "mine", "x-extra": "1"}),
             (read_headers, 200, {"x-litellm-model-group": "g", "Content-Type": "application/json"}),
             (lambda response: response.set_status(201), 201, {"x-litellm-model-group": "g"}),
             (lambda response: response.force_close(), 200, {"Connection": "close"}),
             (lambda response: response.enable_compression(), 200, {"Content-Encoding": "gzip"})]
    for change, status, expected in cases:
        client = await aiohttp_client(_middleware_app(change))
        resp = await client.get("/", headers={"Accept-Encoding": "gzip"})
        assert resp.status == status and await resp.read() == b"{}"
        assert {name: resp.headers.get(name) for name in expected} == expected
    assert len(aiohttp_heads) == len(cases)


async def test_a_head_request_takes_aiohttps_way_without_a_body(aiohttp_client, aiohttp_heads):
    async def handler(request: web.Request) -> web.StreamResponse:
        return Answer({"x-litellm-model-group": "g"}, b"{}")

    app = web.Application()
    app.router.add_route("*", "/", handler)
    client = await aiohttp_client(app)
    for _ in range(2):  # (the connection serves on: no body was sent after the head)
        resp = await client.head("/")
        assert resp.status == 200 and resp.headers["x-litellm-model-group"] == "g"
        assert resp.headers["Content-Length"] == "2" and await resp.read() == b""
    assert len(aiohttp_heads) == 2
