"""OpenAI-compatible endpoints: chat and text completions, embeddings, moderations."""

from __future__ import annotations

import logging

from aiohttp import web

from sidecar import keys
from sidecar.dispatch import flatten_extra_body
from sidecar.errors import SidecarError
from sidecar.http import convert, read_json_object
from sidecar.info import deployment_info
from sidecar.routing.batch import batch_completions, is_batch
from sidecar.routing.serve import answer, new_call, router_for
from sidecar.wire import (
    OPENAI_CHAT_PARAMS,
    OPENAI_EMBEDDING_PARAMS,
    ChatCompletionRequest,
    EmbeddingRequest,
    ModerationRequest,
)
from sidecar.wire_completions import OPENAI_COMPLETION_PARAMS, TextCompletionRequest

log = logging.getLogger("sidecar")

_NO_PARAMS: frozenset[str] = frozenset()


async def read_body(request: web.Request) -> dict:
    """The request's JSON object, ``extra_body`` merged; on an Azure route
    (``/openai/deployments/{model}/...``) the path's deployment names the group."""
    body = flatten_extra_body(await read_json_object(request))
    path_model = request.match_info.get("model")
    if path_model is not None:
        body["model"] = path_model
    return body


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    typed = convert(body, ChatCompletionRequest)  # (`messages` is not empty: its type says so)
    router = router_for(request, body)
    if is_batch(router, typed.model):
        return await batch_completions(request, router, body, typed)
    return await answer(request, router, new_call(request, body, typed, typed.model, "chat", OPENAI_CHAT_PARAMS))


async def completions(request: web.Request) -> web.StreamResponse:
    """Legacy text completions, plain or streamed, for providers with the ``completion`` capability."""
    body = await read_body(request)
    typed = convert(body, TextCompletionRequest)
    call = new_call(request, body, typed, typed.model, "completion", OPENAI_COMPLETION_PARAMS)
    return await answer(request, router_for(request, body), call)


async def embeddings(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    typed = convert(body, EmbeddingRequest)
    call = new_call(request, body, typed, typed.model, "embedding", OPENAI_EMBEDDING_PARAMS)
    return await answer(request, router_for(request, body), call)


async def moderations(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    typed = convert(body, ModerationRequest)
    model = typed.model if isinstance(typed.model, str) else _default_moderation_model(request)
    call = new_call(request, body, typed, model, "moderation", _NO_PARAMS)
    return await answer(request, router_for(request, body), call)


def _default_moderation_model(request: web.Request) -> str:
    """With no ``model`` sent: the first group whose mode (its ``model_info`` or the catalog's)
    is moderation, else the first whose provider can moderate. Chosen once per registry version."""
    app = request.app
    registry = app[keys.REGISTRY]
    state = app[keys.STATE]
    cached = state.moderation_default
    if cached is None or cached[0] != registry.version:
        synced = app[keys.SYNCED_MODELS]
        candidates = [dep for dep in registry if "moderation" in dep.provider.capabilities and not dep.is_wildcard]
        chosen = next((d for d in candidates if deployment_info(d, synced=synced)["mode"] == "moderation"),
                      candidates[0] if candidates else None)
        cached = state.moderation_default = (registry.version, chosen.model_name if chosen else None)
    if cached[1] is None:
        raise SidecarError(400, "no `model` given and no moderation model is configured", param="model",
                           code="model_not_found")
    return cached[1]
