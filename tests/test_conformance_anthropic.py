"""The conformance kit's suite on the ``anthropic`` plugin, against the Anthropic fake
(tests/fake_anthropic.py)."""

from __future__ import annotations

import pytest
from fake_anthropic import AnthropicFake

from sidecar.testing import LITELLM_CLIENT_PARAMS, ErrorCase, ProviderConformance, start

KEY = "sk-ant-api03-conformance-key-0123456789"


class TestAnthropicConformance(ProviderConformance):
    chat_scenario = "claude-sonnet-4-5"
    extra_params = LITELLM_CLIENT_PARAMS  # its list is LiteLLM's, extra_headers included
    error_scenarios = {
        "error-rate": ErrorCase("rate_limit", retry_after="7"),
        # Anthropic's 529 overloaded_error is a rate limit for the router, and carries no retry time
        "error-overloaded": ErrorCase("rate_limit", retry_after=False),
        "error-context": "context_window",
        "error-server": "server",
        "bad-key": "auth",
    }

    @pytest.fixture
    async def upstream(self, aiohttp_server):
        return await start(aiohttp_server, AnthropicFake(api_key=KEY))

    def litellm_params(self, upstream, scenario):
        key = "sk-ant-api03-wrong-key-987654321" if scenario == "bad-key" else KEY
        model = self.chat_scenario if scenario == "bad-key" else scenario
        return {"model": f"anthropic/{model}", "api_base": upstream.root_url, "api_key": key}
