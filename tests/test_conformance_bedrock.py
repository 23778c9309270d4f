"""The conformance kit's suite on the ``bedrock`` plugin, against the Bedrock runtime fake
(tests/fake_bedrock.py), which checks every request's SigV4 signature."""

from __future__ import annotations

import pytest
from fake_bedrock import BedrockFake

from sidecar.testing import ErrorCase, ProviderConformance, start

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"


class TestBedrockConformance(ProviderConformance):
    chat_scenario = CLAUDE
    embedding_scenario = "amazon.titan-embed-text-v2:0"
    error_scenarios = {
        "error-throttling": ErrorCase("rate_limit", retry_after=False),  # AWS's ThrottlingException gives no retry time
        "error-too-long": "context_window",
        "error-validation": "bad_request",
        "error-denied": "permission",
        "error-missing": "not_found",
        "error-timeout": "timeout",
        "error-internal": "server",
        "error-unavailable": "server",
        "bad-secret": "auth",  # a wrong secret key: the signature does not match
    }

    @pytest.fixture
    async def upstream(self, aiohttp_server):
        return await start(aiohttp_server, BedrockFake())

    def litellm_params(self, upstream, scenario):
        secret = "wrong-secret-key/0123456789abcdefghij" if scenario == "bad-secret" else upstream.secret_key
        model = CLAUDE if scenario == "bad-secret" else scenario
        return {"model": f"bedrock/{model}", "aws_bedrock_runtime_endpoint": upstream.root_url,
                "aws_access_key_id": upstream.access_key, "aws_secret_access_key": secret,
                "aws_region_name": upstream.region}
