"""``GET /health`` (master key): each deployment's health from the router's own state, in
LiteLLM's shape; ``?probe=true`` makes one minimal real call per deployment instead."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from msgspec import convert

from sidecar import keys
from sidecar.dispatch import build_call
from sidecar.errors import SidecarError
from sidecar.http import json_response, query_flag
from sidecar.info import deployment_info, public_params
from sidecar.registry import Deployment
from sidecar.routing.policy import route_info
from sidecar.routing.router import Router
from sidecar.secrets import scrub
from sidecar.wire import ChatCompletionRequest, EmbeddingRequest

PROBE_TIMEOUT = 10.0


async def health(request: web.Request) -> web.Response:
    app = request.app
    router = app[keys.ROUTER]
    probe = query_flag(request, "probe")
    deps = [dep for dep in app[keys.REGISTRY] if not dep.is_wildcard]
    if probe:
        entries = await asyncio.gather(*(_probe(request, router, dep) for dep in deps))
    else:
        entries = [_from_state(router, dep) for dep in deps]
    healthy = [e for e in entries if e["healthy"]]
    unhealthy = [e for e in entries if not e["healthy"]]
    return json_response({"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                          "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)})


def _public(dep: Deployment) -> dict[str, Any]:
    """What an entry shows of a deployment: its name, id and non-secret params."""
    return {"model": dep.litellm_params["model"], "model_name": dep.model_name, "model_id": dep.id,
            "litellm_params": public_params(dep)}  # (as /model/info: nested keys too, URL credentials)


def _from_state(router: Router, dep: Deployment) -> dict[str, Any]:
    now = time.monotonic()
    state = router.state
    route = route_info(dep, router.policy, router.price)
    requests, tokens, in_flight, _ = state.usage(dep.id, now)
    cooling_left = state.cooling_until(dep.id) - now
    last_error, last_error_at = state.last_error(dep.id)
    entry = _public(dep)
    entry.update({
        "healthy": cooling_left <= 0,
        "cooldown_seconds_left": round(cooling_left, 3) if cooling_left > 0 else 0,
        "last_error": last_error,
        "last_error_at": last_error_at,
        "in_flight": in_flight,
        "requests_this_minute": requests,
        "tokens_this_minute": tokens,
        "rpm": route.limits.rpm, "tpm": route.limits.tpm, "max_parallel_requests": route.limits.parallel,
    })
    return entry


async def _probe(request: web.Request, router: Router, dep: Deployment) -> dict[str, Any]:
    """One minimal call: a one-token chat, or a one-word embedding for an embedding model."""
    entry = _public(dep)
    mode = deployment_info(dep, synced=request.app[keys.SYNCED_MODELS]).get("mode")
    embed = mode == "embedding" or "chat" not in dep.provider.capabilities
    if embed and "embedding" not in dep.provider.capabilities:
        entry.update({"healthy": True, "probe": "skipped: the deployment serves neither chat nor embeddings"})
        return entry
    if embed:
        body: dict[str, Any] = {"model": dep.model_name, "input": "ping"}
        typed, method, capability = EmbeddingRequest(model=dep.model_name, input="ping"), "embeddings", "embedding"
    else:
        body = {"model": dep.model_name, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        typed, method, capability = convert(body, ChatCompletionRequest), "chat", "chat"
    started = time.monotonic()
    try:
        call = build_call(request, body, typed, dep, None, capability, frozenset(),
                          {**dep.litellm_params, "timeout": PROBE_TIMEOUT})
        async with asyncio.timeout(PROBE_TIMEOUT):
            await getattr(dep.provider, method)(call)
    except (SidecarError, TimeoutError, NotImplementedError) as exc:
        message = exc.message if isinstance(exc, SidecarError) else f"no answer within {PROBE_TIMEOUT:g} s"
        entry.update({"healthy": False, "error": scrub(message, dep.secrets),
                      "error_kind": getattr(exc, "kind", "timeout")})
        return entry
    entry.update({"healthy": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)})
    return entry
