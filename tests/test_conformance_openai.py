"""The conformance kit's suite on the ``openai`` plugin: OpenAI itself and Azure OpenAI, against
the shared fakes (tests/fake_upstreams.py); the 401s echo the key they were given, as OpenAI's do."""

from __future__ import annotations

import pytest
from openai_helpers import AZURE_KEY, KEY

from sidecar.testing import LITELLM_CLIENT_PARAMS, ProviderConformance

OPENAI_ERRORS = {"error-429": "rate_limit", "error-401": "auth", "error-403": "permission", "error-404": "not_found",
                 "error-400": "bad_request", "error-context": "context_window", "error-policy": "content_policy",
                 "error-500": "server", "error-503": "server"}


class TestOpenAIConformance(ProviderConformance):
    extra_params = LITELLM_CLIENT_PARAMS  # its chat list is LiteLLM's, max_retries and extra_headers included
    chat_scenario = "gpt-4o-mini"
    embedding_scenario = "text-embedding-3-small"
    error_scenarios = OPENAI_ERRORS

    @pytest.fixture
    def upstream(self, openai_fake):
        return openai_fake

    def litellm_params(self, upstream, scenario):
        return {"model": f"openai/{scenario}", "api_base": upstream.base_url, "api_key": KEY}


class TestAzureConformance(ProviderConformance):
    extra_params = LITELLM_CLIENT_PARAMS
    chat_scenario = "my-gpt4o-deployment"
    embedding_scenario = "my-embedder"
    error_scenarios = {"error-429": "rate_limit", "error-401": "auth", "error-context": "context_window",
                       "error-policy": "content_policy", "error-500": "server"}

    @pytest.fixture
    def upstream(self, azure_fake):
        return azure_fake

    def litellm_params(self, upstream, scenario):
        return {"model": f"azure/{scenario}", "api_base": upstream.root_url, "api_key": AZURE_KEY,
                "api_version": "2024-10-21"}
