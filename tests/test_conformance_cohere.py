"""The conformance kit's suite on the ``cohere`` plugin, against the Cohere fake
(tests/fake_cohere.py)."""

from __future__ import annotations

import pytest
from fake_cohere import CohereFake

from sidecar.testing import ErrorCase, ProviderConformance, start

KEY = "co-conformance-key-0123456789abcdef"


class TestCohereConformance(ProviderConformance):
    chat_scenario = "command-a-03-2025"
    embedding_scenario = "embed-v4.0"
    error_scenarios = {
        "error-429": ErrorCase("rate_limit", retry_after=False),  # Cohere's 429 gives no retry time
        "error-400": "context_window",  # "too many tokens: ..."
        "error-498": "auth",  # Cohere's invalid token
        "error-500": "server",
        "bad-key": "auth",
    }

    @pytest.fixture
    async def upstream(self, aiohttp_server):
        return await start(aiohttp_server, CohereFake(api_key=KEY))

    def litellm_params(self, upstream, scenario):
        key = "co-wrong-key-9876543210fedcba" if scenario == "bad-key" else KEY
        model = self.chat_scenario if scenario == "bad-key" else scenario
        return {"model": f"cohere/{model}", "api_base": upstream.root_url, "api_key": key}
