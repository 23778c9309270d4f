"""Helpers of the model registry tests: a tiny recording OpenAI upstream and error checks."""

from __future__ import annotations

from pathlib import Path

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MASTER_KEY = "sk-master-registry-test-0001"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@dataclass
class Upstream:
    """An OpenAI-compatible server on 127.0.0.1 recording what it gets.

    ``POST /v1/chat/completions`` answers a fixed completion with usage; ``GET /v1/models``
    lists ``models`` in OpenAI's list format.
    """

    models: list[str] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    list_calls: int = 0
    server: Any = None
    gate: asyncio.Event | None = None
    """When set, chat requests wait for it (after setting ``arrived``): a request held in flight."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/v1"))

    @property
    def host(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.chats.append(body)
        self.auth_headers.append(request.headers.get("Authorization"))
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        return web.json_response({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1730000000, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        })

    async def _models(self, request: web.Request) -> web.Response:
        self.list_calls += 1
        self.auth_headers.append(request.headers.get("Authorization"))
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1730000000, "owned_by": "fake"} for m in self.models]})


async def start_upstream(aiohttp_server, models: list[str] | None = None) -> Upstream:
    up = Upstream(models=list(models or []))
    up.server = await aiohttp_server(up.app(), host="127.0.0.1")
    return up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def error_of(resp, status: int, *mentions: str) -> dict[str, Any]:
    """``resp`` is ``status`` in OpenAI's error envelope mentioning each of ``mentions``."""
    text = await resp.text()
    assert resp.status == status, f"expected {status}, got {resp.status}: {text}"
    assert resp.content_type == "application/json"
    body = json.loads(text)
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    for word in mentions:
        assert word in err["message"], (word, err["message"])
    return err


def chat_body(model: str, text: str = "hello") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


# ---------------------------------------------------------------- shared by the registry tests

MOCK = {"model_name": "config-mock", "litellm_params": {"model": "mock/config-mock"}}


def cfg(tmp_path: Path, *models: dict, master_key: bool = True, db: str = "registry.db") -> dict:
    general = {"database_url": f"sqlite:///{tmp_path / db}"}
    if master_key:
        general["master_key"] = MASTER_KEY
    return {"model_list": list(models or [MOCK]), "general_settings": general}


async def info_rows(client, **query) -> list[dict]:
    resp = await client.get("/model/info", headers=AUTH, params=query)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"]


async def add(client, body: dict) -> dict:
    resp = await client.post("/model/new", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()
