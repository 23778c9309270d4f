"""Shared fixtures: build the app from a config dict and talk to it over real HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai_helpers
import pluggy
import pytest
from aiohttp.test_utils import TestClient
from fake_upstreams import AzureFake, OpenAIFake, VLLMFake, start

from sidecar.app import create_app
from sidecar.config import parse_config

MOCK_MODELS = [
    {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}},
    {"model_name": "mock-embedding", "litellm_params": {"model": "mock/mock-embedding", "dimensions": 8}},
    {"model_name": "mock-moderation", "litellm_params": {"model": "mock/mock-moderation"},
     "model_info": {"mode": "moderation"}},
]

MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_config(tmp_path):
    """A Config from a dict, on a fresh SQLite file unless the dict names one."""

    def make(data: dict[str, Any] | None = None):
        data = dict(data or {"model_list": MOCK_MODELS})
        general = dict(data.get("general_settings") or {})
        general.setdefault("database_url", f"sqlite:///{tmp_path / 'sidecar.db'}")
        data["general_settings"] = general
        return parse_config(data, source="test.yaml")

    return make


@pytest.fixture
def make_client(aiohttp_client, make_config) -> MakeClient:
    """``await make_client(config_dict, pm=None)``: a test client of a served app."""

    async def make(data: dict[str, Any] | None = None, pm: pluggy.PluginManager | None = None) -> TestClient:
        return await aiohttp_client(create_app(make_config(data), pm=pm))

    return make


# Fake upstreams speaking OpenAI's, Azure's and vLLM's wire formats (tests/fake_upstreams.py).


@pytest.fixture
async def openai_fake(aiohttp_server):
    return await start(aiohttp_server, OpenAIFake(api_key=openai_helpers.KEY))


@pytest.fixture
async def azure_fake(aiohttp_server):
    return await start(aiohttp_server, AzureFake(api_key=openai_helpers.AZURE_KEY))


@pytest.fixture
async def vllm_fake(aiohttp_server):
    return await start(aiohttp_server, VLLMFake())
