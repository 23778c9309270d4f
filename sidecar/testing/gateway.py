"""The gateway under test: the app built from a config dict (on a temporary SQLite file), served
over real HTTP by pytest-aiohttp, and an ``openai`` SDK client of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sidecar.app import create_app
from sidecar.config import Config, parse_config
from sidecar.plugins import get_plugin_manager

__all__ = ["MOCK_MODELS", "MakeGateway", "build_config", "deployment", "gateway_config", "make_gateway", "openai_sdk"]

MOCK_MODELS: list[dict[str, Any]] = [
    {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}},
    {"model_name": "mock-embedding", "litellm_params": {"model": "mock/mock-embedding", "dimensions": 8}},
    {"model_name": "mock-moderation", "litellm_params": {"model": "mock/mock-moderation"},
     "model_info": {"mode": "moderation"}},
]
"""The config a gateway gets when none is given: the built-in ``mock`` provider's models."""
SDK_TIMEOUT = 10.0
"""Seconds an SDK call may take: a hung gateway fails the test instead of hanging it."""

MakeGateway = Callable[..., Awaitable[TestClient]]


def deployment(name: str, model: str, **params: Any) -> dict[str, Any]:
    """A ``model_list`` entry: ``model_name`` ``name``, ``litellm_params`` ``model`` and ``params``,
    a fixed deployment id ``dep-<name>`` (the ``x-litellm-model-id`` header), and ``num_retries:
    0`` unless given, so a test sees each upstream failure once, as the client gets it."""
    return {"model_name": name, "model_info": {"id": f"dep-{name}"},
            "litellm_params": {"model": model, "num_retries": 0, **params}}


def build_config(data: dict[str, Any] | None, tmp_path: Path) -> Config:
    """A Config from a dict (LiteLLM's ``config.yaml`` shape), on a fresh SQLite file in
    ``tmp_path`` unless the dict names a database."""
    data = dict(data or {"model_list": MOCK_MODELS})
    general = dict(data.get("general_settings") or {})
    general.setdefault("database_url", f"sqlite:///{tmp_path / 'sidecar.db'}")
    data["general_settings"] = general
    return parse_config(data, source="test.yaml")


@pytest.fixture
def gateway_config(tmp_path: Path) -> Callable[[dict[str, Any] | None], Config]:
    """``gateway_config(config_dict)``: a Config on a fresh SQLite file (see :func:`build_config`)."""
    return lambda data=None: build_config(data, tmp_path)


@pytest.fixture
def make_gateway(aiohttp_client: Any, gateway_config: Callable[..., Config]) -> MakeGateway:
    """``await make_gateway(config_dict, plugins=None, pm=None)``: an aiohttp test client of the
    gateway serving ``config_dict`` over real HTTP. ``plugins``: modules (or objects) with hook
    implementations, registered alone on a fresh plugin manager (the installed plugins are not
    loaded); ``pm``: a plugin manager of your own; neither: the installed plugins."""

    async def make(data: dict[str, Any] | None = None, plugins: Iterable[Any] | None = None,
                   pm: Any = None) -> TestClient:
        if plugins is not None:
            pm = get_plugin_manager(load_entrypoints=False)
            for plugin in plugins:
                pm.register(plugin)
        return await aiohttp_client(create_app(gateway_config(data), pm=pm))

    return make


@pytest.fixture
async def openai_sdk() -> Any:
    """``openai_sdk(client, **options)``: an ``openai.AsyncOpenAI`` of a test client's gateway
    (``/v1``, no retries, a bounded timeout, no proxy from the environment), closed after the test."""
    import openai

    made: list[Any] = []

    def make(client: TestClient, api_key: str = "sk-anything", **options: Any) -> Any:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", SDK_TIMEOUT)
        options.setdefault("http_client", openai.DefaultAsyncHttpxClient(trust_env=False))
        sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=api_key, **options)
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        await sdk.close()
