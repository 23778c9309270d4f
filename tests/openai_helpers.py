"""Shared pieces of the openai-plugin tests: deployments, requests, fakes as fixtures."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from sidecar.testing import assert_envelope, deployment  # noqa: F401 - shared

KEY = "sk-test-secret-123456789"
WRONG_KEY = "sk-test-wrong-key-987654321"
AZURE_KEY = "0123456789abcdef0123456789abcdef"
WAIT = 5.0  # seconds; every wait on the gateway is bounded so a bug fails instead of hanging

decode = msgspec.json.decode

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                       "required": ["location"]},
    },
}


def dep(name: str, model: str, api_base: str, **params: Any) -> dict[str, Any]:
    """The kit's :func:`~sidecar.testing.deployment` (id ``dep-<name>``, ``num_retries: 0`` unless
    given: the plugin tests see each upstream failure once, as the client gets it; the router's
    retries have tests of their own) with ``api_base`` and the fake's key."""
    return deployment(name, model, **{"api_base": api_base, "api_key": KEY, **params})


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def post(client: Any, path: str, body: dict[str, Any]) -> tuple[int, Any, Any]:
    """POST and read the whole answer (bounded): status, decoded JSON, headers."""
    async def go():
        resp = await client.post(path, json=body)
        return resp.status, decode(await resp.read()), resp.headers
    return await asyncio.wait_for(go(), WAIT)


async def stream(client: Any, body: dict[str, Any]) -> tuple[Any, list[Any]]:
    """POST a streaming chat; the response and its ``data:`` payloads (decoded, ``[DONE]`` as is)."""
    async def go():
        resp = await client.post("/v1/chat/completions", json={**body, "stream": True})
        raw = await resp.read()
        return resp, raw
    resp, raw = await asyncio.wait_for(go(), WAIT)
    assert resp.status == 200, raw
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = [e for e in raw.split(b"\n\n") if e.strip()]
    assert all(e.startswith(b"data: ") for e in events), raw
    payloads = [e[len(b"data: "):] for e in events]
    assert payloads[-1] == b"[DONE]", raw
    assert payloads.count(b"[DONE]") == 1
    return resp, [decode(p) for p in payloads[:-1]]
