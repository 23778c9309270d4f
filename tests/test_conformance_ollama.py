"""The conformance kit's suite on the ``ollama`` plugin (``ollama_chat/`` and ``ollama/``), against
the Ollama fake (tests/fake_ollama.py)."""

from __future__ import annotations

import pytest
from fake_ollama import OllamaFake

from sidecar.testing import ErrorCase, ProviderConformance, start

KEY = "ollama-cloud-conformance-key-0123456789"
ERRORS = {
    "error-429": ErrorCase("rate_limit", retry_after=False),  # Ollama's 429 gives no retry time
    "missing": "not_found",
    "bad-key": "auth",
}


class TestOllamaChatConformance(ProviderConformance):
    prefix = "ollama_chat"
    chat_scenario = "llama3.1"
    embedding_scenario = "nomic-embed-text"
    error_scenarios = ERRORS

    @pytest.fixture
    async def upstream(self, aiohttp_server):
        return await start(aiohttp_server, OllamaFake(api_key=KEY))

    def litellm_params(self, upstream, scenario):
        key = "ollama-wrong-key-987654321" if scenario == "bad-key" else KEY
        model = self.chat_scenario if scenario == "bad-key" else scenario
        return {"model": f"{self.prefix}/{model}", "api_base": upstream.root_url, "api_key": key}


class TestOllamaGenerateConformance(TestOllamaChatConformance):
    prefix = "ollama"
