"""Shared fixtures: the conformance kit's gateway (``sidecar.testing``: the app built from a config
dict, served over real HTTP) and the fake upstreams most tests share."""

from __future__ import annotations

import os

import pytest

# `sidecar serve` run by a test serves on asyncio's loop (sidecar.loop.LeanLoop) even with uvloop
# installed (the test extra installs it); a test that wants uvloop sets SIDECAR_EVENT_LOOP=uvloop
# for its server, and the whole suite can be run on uvloop by setting it before pytest starts.
os.environ.setdefault("SIDECAR_EVENT_LOOP", "asyncio")

pytest.register_assert_rewrite("sidecar.testing")  # (imported below, before pytest loads it as a plugin)

import openai_helpers  # noqa: E402
from fake_upstreams import AzureFake, OpenAIFake, VLLMFake, start  # noqa: E402

from sidecar.loop import new_event_loop  # noqa: E402
from sidecar.testing import MOCK_MODELS, MakeGateway  # noqa: E402, F401 - MOCK_MODELS: imported by tests

pytest_plugins = ["sidecar.testing", "pytester"]

MakeClient = MakeGateway


@pytest.fixture
def make_config(gateway_config):
    """The kit's ``gateway_config``, by the name these tests have always used."""
    return gateway_config


@pytest.fixture
def make_client(make_gateway) -> MakeClient:
    """The kit's ``make_gateway`` (``await make_client(config_dict, pm=None)``), by the name these
    tests have always used."""
    return make_gateway


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


def pytest_asyncio_loop_factories(config, item):
    """Every test runs on the loop ``sidecar serve`` runs on without uvloop (:mod:`sidecar.loop`)."""
    return {"lean_loop": new_event_loop}
