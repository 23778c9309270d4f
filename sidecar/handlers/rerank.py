"""``POST /v1/rerank`` (also ``/rerank`` and ``/v2/rerank``, as LiteLLM serves it): Cohere's rerank
body, routed like chat to a deployment whose provider has the ``rerank`` capability."""

from __future__ import annotations

from aiohttp import web

from sidecar.dispatch import flatten_extra_body
from sidecar.http import convert, read_json_object
from sidecar.rerank import RerankRequest
from sidecar.routing.serve import answer, new_call, router_for

_NO_PARAMS: frozenset[str] = frozenset()


async def rerank(request: web.Request) -> web.StreamResponse:
    body = flatten_extra_body(await read_json_object(request))
    body.pop("stream", None)  # (a rerank has no stream: a stray flag must not make the router stream)
    typed = convert(body, RerankRequest)
    call = new_call(request, body, typed, typed.model, "rerank", _NO_PARAMS)
    return await answer(request, router_for(request, body), call)
