"""The conformance kit's suite on the example third-party plugin (tests/example_plugin): its
``parrot`` provider against the Parrot API's fake (tests/fake_parrot.py), and its ``echo``
provider, which has no upstream. This module is the model docs/plugins.md shows."""

from __future__ import annotations

import pytest
import sidecar_example
from fake_parrot import WAIT_SECONDS, ParrotFake

from sidecar.testing import ErrorCase, ProviderConformance, start

KEY = "pk-parrot-test-key-0123456789"


class TestParrotConformance(ProviderConformance):
    plugin = sidecar_example  # registered alone, as a plugin author's tests would
    chat_scenario = "parrot-1"
    embedding_scenario = "parrot-embed"
    cut_scenario = "cut"
    error_scenarios = {
        # the wait is in Parrot's body (12.5 s): the plugin turns it into Retry-After, rounded up
        "error-too-fast": ErrorCase("rate_limit", retry_after=str(int(WAIT_SECONDS) + 1)),
        "error-too-long": "context_window",
        "error-rude": "content_policy",
        "error-no-such-bird": "not_found",
        "error-broken": "server",
        "bad-key": "auth",  # a wrong key, which Parrot quotes in its answer: the core masks it
    }

    @pytest.fixture
    async def upstream(self, aiohttp_server):
        return await start(aiohttp_server, ParrotFake(api_key=KEY))

    def litellm_params(self, upstream, scenario):
        key = "pk-parrot-wrong-key-987654321" if scenario == "bad-key" else KEY
        return {"model": f"parrot/{scenario}", "api_base": upstream.root_url, "api_key": key,
                "flock": "flock-secret-0123456789"}


class TestEchoConformance(ProviderConformance):
    plugin = sidecar_example
    chat_scenario = "shout"
    cut_scenario = None  # echo answers locally: there is no upstream to fail or cut
    required_kinds = ()

    def litellm_params(self, upstream, scenario):
        return {"model": f"echo/{scenario}"}
