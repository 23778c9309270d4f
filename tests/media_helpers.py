"""Shared pieces of the completions, images and audio tests: a sidecar served on a real port in
front of a :class:`fake_media.MediaFake`, and the official SDK as its client."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import openai
from aiohttp import web

from openai_spec import assert_valid

MASTER = "sk-sidecar-master-key-media"
UPSTREAM_KEY = "sk-test-secret-123456789"
WAIT = 10.0


def upstream(name: str, model: str, fake: Any, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "model_info": {"id": f"dep-{name}"},
            "litellm_params": {"model": model, "api_base": fake.base_url, "api_key": UPSTREAM_KEY,
                               "num_retries": 0, **params}}


async def serve(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on a free 127.0.0.1 port; yields its root URL."""
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


def sdk(root: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=root + "/v1", api_key=MASTER, max_retries=0, timeout=WAIT,
                              http_client=openai.DefaultAsyncHttpxClient(trust_env=False))


def assert_valid_completion_chunk(chunk: dict[str, Any]) -> None:
    """A streamed completion chunk against CreateCompletionResponse. OpenAI's streams send
    ``finish_reason: null`` until the last chunk, which the spec (written for the whole answer)
    does not allow: such a chunk is checked with that one field filled in."""
    checked = copy.deepcopy(chunk)
    for choice in checked["choices"]:
        if choice.get("finish_reason", "absent") is None:
            choice["finish_reason"] = "stop"
    assert_valid(checked, "CreateCompletionResponse")
