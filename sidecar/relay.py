"""A :class:`~sidecar.wire_media.RawAnswer` relayed to the client byte for byte, as it arrives
(speech audio, a transcription in the upstream's format): the answer starts with the first bytes,
so a failure before them is a plain error answer with its status; one after them cuts the
connection (a binary body has no error event), which clients see as a broken download."""

from __future__ import annotations

import logging

from aiohttp import web

from sidecar.dispatch import log_upstream_failure
from sidecar.errors import SidecarError
from sidecar.provider import ProviderCall
from sidecar.registry import Deployment
from sidecar.secrets import scrub
from sidecar.wire_media import RawAnswer

log = logging.getLogger("sidecar")


async def relay_raw(request: web.Request, dep: Deployment, call: ProviderCall, answer: RawAnswer,
                    headers: dict[str, str]) -> web.StreamResponse:
    chunks = answer.chunks
    try:
        try:
            first = await anext(chunks, b"")
        except SidecarError as err:
            err.message = scrub(err.message, call.secrets)
            log_upstream_failure(dep, err)
            raise
        resp = web.StreamResponse(headers={**answer.headers, **headers, "Content-Type": answer.content_type})
        await resp.prepare(request)
        await resp.write(first)
        try:
            async for data in chunks:
                await resp.write(data)  # backpressure: a slow client slows the upstream read too
        except SidecarError as err:
            err.message = scrub(err.message, call.secrets)
            log_upstream_failure(dep, err)
            if request.transport is not None:
                request.transport.close()  # no terminating chunk: the client sees the body is incomplete
            return resp
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    await resp.write_eof()
    return resp
