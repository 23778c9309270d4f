"""Server-sent events: chunks forwarded as they arrive, and every stream ended properly.

A failure mid-stream becomes an error event followed by ``data: [DONE]``, so clients never
hang. On shutdown, streams still running just before ``graceful_shutdown_seconds`` runs out get
a 503 ``shutting_down`` event and ``[DONE]`` (aiohttp would otherwise cut the connection).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from sidecar import keys
from sidecar.dispatch import log_upstream_failure, model_id_headers
from sidecar.errors import SidecarError
from sidecar.http import encoder
from sidecar.registry import Deployment
from sidecar.secrets import scrub

log = logging.getLogger("sidecar")

DONE = b"data: [DONE]\n\n"
_SHUTDOWN = "llm-sidecar shutdown deadline"
_MARGIN = 0.5  # seconds before the grace period ends, to write the last events


async def stream_sse(request: web.Request, dep: Deployment, chunks) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        **model_id_headers(dep),
    })
    await resp.prepare(request)
    encode = encoder.encode
    streams = request.app[keys.STATE]["streams"]
    task = asyncio.current_task()
    streams.add(task)
    last: SidecarError | None = None
    try:
        async for chunk in chunks:
            await resp.write(b"data: " + (chunk if isinstance(chunk, bytes) else encode(chunk)) + b"\n\n")
    except SidecarError as err:
        err.message = scrub(err.message, dep.secrets)
        log_upstream_failure(dep, err)
        last = err
    except ConnectionResetError:  # the client left
        await _close(chunks)
        raise
    except asyncio.CancelledError as exc:
        await _close(chunks)
        if not (exc.args and exc.args[0] == _SHUTDOWN and task is not None):
            raise
        task.uncancel()
        last = SidecarError(503, "llm-sidecar is shutting down; the stream was cut", code="shutting_down")
    except Exception:
        log.exception("provider %s failed mid-stream", dep.provider.name)
        last = SidecarError(502, f"{dep.provider.name} failed mid-stream", code="upstream_error")
    finally:
        streams.discard(task)
    await resp.write((b"data: " + encode(last.body()) + b"\n\n" + DONE) if last else DONE)
    await resp.write_eof()
    return resp


async def _close(chunks) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # the client is gone; nothing to tell
            pass


async def end_streams_before_deadline(app: web.Application) -> None:
    """``on_shutdown``: just before the grace period ends, end the streams still running."""
    streams: set[asyncio.Task] = app[keys.STATE]["streams"]
    grace = app[keys.CONFIG].general.graceful_shutdown_seconds

    def cut() -> None:
        for task in list(streams):
            task.cancel(_SHUTDOWN)

    asyncio.get_running_loop().call_later(max(grace - _MARGIN, 0.0), cut)
