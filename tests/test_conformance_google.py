"""The conformance kit's suite on the ``google`` plugin: ``gemini`` (an API key) and ``vertex_ai``
(a service account's tokens), against the Google fake (tests/fake_google.py)."""

from __future__ import annotations

import msgspec
import pytest
from fake_google import RETRY_DELAY, GoogleFake
from test_vertex_provider import LOCATION, PROJECT, rsa_key, service_account

from sidecar.testing import ErrorCase, ProviderConformance, start

KEY = "AIzaSyFAKE-conformance-key-0123456789"
ERRORS = {
    "error-429": ErrorCase("rate_limit", retry_after=RETRY_DELAY.removesuffix("s")),  # from its RetryInfo
    "error-context": "context_window",
    "blocked": "content_policy",
    "error-500": "server",
}


class TestGeminiConformance(ProviderConformance):
    chat_scenario = "gemini-2.5-flash"
    embedding_scenario = "text-embedding-004"
    error_scenarios = {**ERRORS, "bad-key": "auth"}  # Google's 400 API_KEY_INVALID is an auth failure

    @pytest.fixture
    async def upstream(self, aiohttp_server):
        return await start(aiohttp_server, GoogleFake(api_key=KEY))

    def litellm_params(self, upstream, scenario):
        key = "AIzaSyFAKE-wrong-key-9876543210" if scenario == "bad-key" else KEY
        model = self.chat_scenario if scenario == "bad-key" else scenario
        return {"model": f"gemini/{model}", "api_base": upstream.root_url, "api_key": key}


@pytest.fixture(scope="module")
def key():
    return rsa_key()


class TestVertexConformance(ProviderConformance):
    chat_scenario = "gemini-2.5-flash"
    embedding_scenario = "text-embedding-005"
    error_scenarios = ERRORS

    @pytest.fixture
    async def upstream(self, aiohttp_server, key):
        fake = await start(aiohttp_server, GoogleFake(public_key=key.public_key()))
        fake.credentials = msgspec.json.encode(service_account(key, fake.root_url + "/token")).decode()
        return fake

    def litellm_params(self, upstream, scenario):
        return {"model": f"vertex_ai/{scenario}", "api_base": upstream.root_url, "vertex_project": PROJECT,
                "vertex_location": LOCATION, "vertex_credentials": upstream.credentials}
