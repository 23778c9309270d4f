"""A bare aiohttp pass-through, the bench's floor for an aiohttp gateway (issue 13).

One aiohttp server whose one handler reads the request body bytes, posts them with one shared
``aiohttp.ClientSession`` to the same path on the upstream and returns the answer bytes, parsing
nothing: a plain answer is read whole and returned; an answer without ``Content-Length`` (the
upstream's chunked SSE stream) is relayed chunk by chunk as the chunks arrive. The client's
``Authorization`` header is replaced by the upstream key, as a gateway would. ``GET /health`` answers
locally (for the bench's readiness poll). ``--lean`` posts with the sidecar's lean client
(``sidecar.httpclient.LeanSession``) instead: the floor for an aiohttp server with that client.

    python bench/passthrough.py --port 8200 --upstream http://127.0.0.1:8100 [--uvloop] [--lean]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import aiohttp
from aiohttp import web

UPSTREAM_KEY = "Bearer sk-upstream-bench"
SESSION: web.AppKey[Any] = web.AppKey("session", object)
UPSTREAM: web.AppKey[str] = web.AppKey("upstream", str)


async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json"),
               "Authorization": UPSTREAM_KEY}
    session = request.app[SESSION]
    async with session.post(request.app[UPSTREAM] + request.path_qs, data=body, headers=headers) as up:
        ctype = up.headers.get("Content-Type", "application/json")
        if "Content-Length" in up.headers:
            return web.Response(status=up.status, body=await up.read(), headers={"Content-Type": ctype})
        out = web.StreamResponse(status=up.status, headers={"Content-Type": ctype, "Cache-Control": "no-cache"})
        await out.prepare(request)
        async for chunk in up.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out


def make_app(upstream: str, lean: bool = False) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")

    async def session_ctx(app: web.Application):
        # aiohttp's defaults (the reference): a keep-alive pool of 100 > the bench's c=64
        if lean:
            from sidecar.httpclient import LeanSession

            app[SESSION] = LeanSession(limit=1000, limit_per_host=500, keepalive_timeout=15)
        else:
            app[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", health)
    app.router.add_post("/{tail:.*}", forward)
    return app


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(args.upstream, args.lean), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    print(f"ready {args.port} on {type(loop).__module__.split('.')[0]}", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    except asyncio.TimeoutError:
        pass  # bounded in time: never outlive the bench that started it
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="the upstream's base URL, e.g. http://127.0.0.1:8100")
    p.add_argument("--uvloop", action="store_true", help="run on uvloop (it must be importable)")
    p.add_argument("--lean", action="store_true", help="post with the sidecar's lean client, not ClientSession")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="exit by itself after this long")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("the bench pass-through only listens on loopback")
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        sys.modules["uvloop"] = None  # type: ignore[assignment]  # plain asyncio, even if uvloop is installed
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
