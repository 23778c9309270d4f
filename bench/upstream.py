"""A fake OpenAI-compatible upstream that answers instantly, for benchmarks.

Every answer is precomputed bytes; nothing is parsed but the request line, ``Content-Length``
and whether the body asks for ``"stream": true``. It is the "direct-to-upstream" target, the
physical limit the gateway is compared against, so it must not be the bottleneck.

Two implementations of the same answers:

* ``raw`` (default): a bare :class:`asyncio.Protocol` speaking just enough HTTP/1.1 (keep-alive,
  Content-Length bodies, pipelining). Several times faster than aiohttp's server.
* ``aiohttp``: the same precomputed bytes through aiohttp's web server, for comparison.

Routes (with or without ``/v1``): ``POST /chat/completions`` (plain, or SSE with 20 chunks and
``[DONE]`` when the body has ``"stream": true``), ``POST /embeddings`` (one 1536-float vector per
request), ``GET /models``, ``GET /health``. Anything else is a 404 in OpenAI's error envelope.

    python bench/upstream.py --port 8100 [--impl raw|aiohttp]

It listens on 127.0.0.1 only, and prints ``ready <port>`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys

CREATED = 1700000000
STREAM_CHUNKS = 20
EMBEDDING_DIMS = 1536

# ---------------------------------------------------------------- precomputed bodies


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


CHAT_BODY = _dumps({
    "id": "chatcmpl-bench0001",
    "object": "chat.completion",
    "created": CREATED,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_bench",
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": "Hello! This is an instant answer from the bench upstream.",
                    "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {"prompt_tokens": 12, "completion_tokens": 12, "total_tokens": 24},
})


def _chunk(delta: dict, finish: str | None) -> bytes:
    return _dumps({
        "id": "chatcmpl-bench0001", "object": "chat.completion.chunk", "created": CREATED,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    })


def _sse_events() -> list[bytes]:
    events = [_chunk({"role": "assistant", "content": ""}, None)]
    events += [_chunk({"content": f"tok{i} "}, None) for i in range(STREAM_CHUNKS - 2)]
    events.append(_chunk({}, "stop"))
    assert len(events) == STREAM_CHUNKS
    return [b"data: " + e + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


SSE_EVENTS = _sse_events()
SSE_BODY = b"".join(SSE_EVENTS)

EMBEDDING_BODY = _dumps({
    "object": "list",
    "data": [{"object": "embedding", "index": 0,
              "embedding": [round(((i * 7919) % 2000) / 1000.0 - 1.0, 6) for i in range(EMBEDDING_DIMS)]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
})

MODELS_BODY = _dumps({"object": "list", "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": CREATED, "owned_by": "bench"},
    {"id": "text-embedding-3-small", "object": "model", "created": CREATED, "owned_by": "bench"},
]})
HEALTH_BODY = b'{"status":"ok"}'
NOT_FOUND_BODY = _dumps({"error": {"message": "no such route on the bench upstream", "type": "invalid_request_error",
                                   "param": None, "code": "not_found"}})

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')


def wants_stream(body: bytes) -> bool:
    return b'"stream"' in body and _STREAM_RE.search(body) is not None


# ---------------------------------------------------------------- raw asyncio protocol


def _response(status: str, body: bytes, ctype: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + ctype +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


# Streams go out chunked, one HTTP chunk per SSE event, as real OpenAI-compatible servers do;
# "instant" means they are all written at once.
RAW_STREAM = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" +
              b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in SSE_EVENTS) + b"0\r\n\r\n")
RAW_CHAT = _response("200 OK", CHAT_BODY)
RAW_EMBEDDING = _response("200 OK", EMBEDDING_BODY)
RAW_MODELS = _response("200 OK", MODELS_BODY)
RAW_HEALTH = _response("200 OK", HEALTH_BODY)
RAW_404 = _response("404 Not Found", NOT_FOUND_BODY)
RAW_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def _route(method: bytes, path: bytes, body: bytes) -> bytes:
    path = path.split(b"?", 1)[0]
    if path.startswith(b"/v1/"):
        path = path[3:]
    if method == b"POST":
        if path == b"/chat/completions":
            return RAW_STREAM if wants_stream(body) else RAW_CHAT
        if path == b"/embeddings":
            return RAW_EMBEDDING
    elif method == b"GET":
        if path == b"/models":
            return RAW_MODELS
        if path == b"/health":
            return RAW_HEALTH
    return RAW_404


class HTTPProtocol(asyncio.Protocol):
    __slots__ = ("transport", "buf")

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            parts = request_line.split(b" ")
            if len(parts) != 3:
                out.append(RAW_400)
                close = True
                buf = b""
                break
            length = 0
            lower = head.lower()
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                try:
                    length = int(head[i + 17:j if j >= 0 else len(head)])
                except ValueError:
                    out.append(RAW_400)
                    close = True
                    buf = b""
                    break
            elif b"\r\ntransfer-encoding:" in lower:
                out.append(RAW_400)  # chunked request bodies are not needed by any client here
                close = True
                buf = b""
                break
            total = end + 4 + length
            if len(buf) < total:
                break
            out.append(_route(parts[0], parts[1], buf[end + 4:total]))
            if b"\r\nconnection: close" in lower:
                close = True
                buf = b""
                break
            buf = buf[total:]
        self.buf = buf
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.buf = b""


async def serve_raw(host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(HTTPProtocol, host, port, backlog=1024, reuse_address=True)


# ---------------------------------------------------------------- aiohttp, for comparison


async def serve_aiohttp(host: str, port: int):
    from aiohttp import web

    def resp(body: bytes, ctype: str = "application/json", status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type=ctype)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not wants_stream(body):
            return resp(CHAT_BODY)
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await out.prepare(request)
        await out.write(SSE_BODY)
        await out.write_eof()
        return out

    async def embeddings(request: web.Request) -> web.Response:
        await request.read()
        return resp(EMBEDDING_BODY)

    app = web.Application()
    for prefix in ("", "/v1"):
        app.router.add_post(prefix + "/chat/completions", chat)
        app.router.add_post(prefix + "/embeddings", embeddings)
        app.router.add_get(prefix + "/models", lambda r: resp(MODELS_BODY))
    app.router.add_get("/health", lambda r: resp(HEALTH_BODY))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    return runner


# ---------------------------------------------------------------- main


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.impl == "raw":
        server = await serve_raw(args.host, args.port)
        port = server.sockets[0].getsockname()[1]
    else:
        server = await serve_aiohttp(args.host, args.port)
        port = server.addresses[0][1]
    print(f"ready {port}", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    except asyncio.TimeoutError:
        pass  # bounded in time: never outlive the bench that started it
    if args.impl == "raw":
        server.close()
    else:
        await server.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'ready PORT')")
    p.add_argument("--impl", choices=("raw", "aiohttp"), default="raw")
    p.add_argument("--uvloop", action="store_true", help="run on uvloop when it is importable")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="exit by itself after this long")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("the bench upstream only listens on loopback")
    if args.uvloop:
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
