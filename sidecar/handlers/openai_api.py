"""OpenAI-compatible endpoints: chat completions, embeddings, moderations, models."""

from __future__ import annotations

import logging

from aiohttp import web

from sidecar import keys
from sidecar.dispatch import (
    flatten_extra_body,
    model_id_headers,
    prepare_call,
    response_headers,
    run_provider,
)
from sidecar.errors import SidecarError, bad_request
from sidecar.http import convert, json_response, read_json_object
from sidecar.info import deployment_info
from sidecar.sse import stream_sse
from sidecar.wire import (
    OPENAI_CHAT_PARAMS,
    OPENAI_EMBEDDING_PARAMS,
    ChatCompletionRequest,
    EmbeddingRequest,
    ModerationRequest,
)

log = logging.getLogger("sidecar")

_NO_PARAMS: frozenset[str] = frozenset()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = flatten_extra_body(await read_json_object(request))
    typed = convert(body, ChatCompletionRequest)
    if not typed.messages:
        raise bad_request("`messages` must contain at least one message", param="messages")
    dep, call = prepare_call(request, body, typed, typed.model, "chat", OPENAI_CHAT_PARAMS)
    result = await run_provider(dep, dep.provider.chat, call)
    if not call.stream:
        return json_response(result, headers=response_headers(request, dep, call, result.usage))
    return await stream_sse(request, dep, call, result)


async def embeddings(request: web.Request) -> web.Response:
    body = flatten_extra_body(await read_json_object(request))
    typed = convert(body, EmbeddingRequest)
    dep, call = prepare_call(request, body, typed, typed.model, "embedding", OPENAI_EMBEDDING_PARAMS)
    result = await run_provider(dep, dep.provider.embeddings, call)
    return json_response(result, headers=response_headers(request, dep, call, result.usage))


async def moderations(request: web.Request) -> web.Response:
    body = flatten_extra_body(await read_json_object(request))
    typed = convert(body, ModerationRequest)
    model = typed.model if isinstance(typed.model, str) else _default_moderation_model(request)
    dep, call = prepare_call(request, body, typed, model, "moderation", _NO_PARAMS)
    result = await run_provider(dep, dep.provider.moderations, call)
    return json_response(result, headers=model_id_headers(dep))


def _default_moderation_model(request: web.Request) -> str:
    """With no ``model`` sent: the first group whose mode (its ``model_info`` or the catalog's)
    is moderation, else the first whose provider can moderate. Chosen once per registry version."""
    app = request.app
    registry = app[keys.REGISTRY]
    state = app[keys.STATE]
    cached = state.get("moderation_default")
    if cached is None or cached[0] != registry.version:
        synced = app[keys.SYNCED_MODELS]
        candidates = [dep for dep in registry if "moderation" in dep.provider.capabilities and not dep.is_wildcard]
        chosen = next((d for d in candidates if deployment_info(d, synced=synced)["mode"] == "moderation"),
                      candidates[0] if candidates else None)
        cached = state["moderation_default"] = (registry.version, chosen.model_name if chosen else None)
    if cached[1] is None:
        raise SidecarError(400, "no `model` given and no moderation model is configured", param="model",
                           code="model_not_found")
    return cached[1]
