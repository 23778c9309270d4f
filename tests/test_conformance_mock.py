"""The conformance kit's suite on the built-in ``mock`` provider, which has no upstream."""

from __future__ import annotations

from sidecar.testing import ErrorCase, ProviderConformance


class TestMockConformance(ProviderConformance):
    chat_scenario = "mock-gpt"
    embedding_scenario = "mock-embedding"
    cut_scenario = None  # the mock answers in-process: there is no connection to cut
    error_scenarios = {"too-many": ErrorCase("bad_request", body={"n": 500})}  # it fails only on what it is asked
    required_kinds = ()  # ... and has no upstream to limit rates

    def litellm_params(self, upstream, scenario):
        return {"model": f"mock/{scenario}"}
