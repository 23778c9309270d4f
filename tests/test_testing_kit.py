"""The conformance kit itself (``sidecar.testing``): it stays out of the server, it ships OpenAI's
spec, and its suite fails a provider that breaks the contract, naming what broke."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sidecar.testing import ErrorCase, request_params
from sidecar.testing.spec import REQUEST_SCHEMAS, raw_text

KIT_MODULES = ("sidecar.testing", "pytest", "jsonschema", "openai")


def test_neither_import_sidecar_nor_create_app_loads_the_kit_or_its_dependencies(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import sidecar, sidecar.cli
        from sidecar.app import create_app
        from sidecar.config import parse_config
        create_app(parse_config({{"model_list": [{{"model_name": "m", "litellm_params": {{"model": "mock/m"}}}}],
                                 "general_settings": {{"database_url": "sqlite:///{tmp_path}/t.db"}}}}))
        print(sorted(m for m in {KIT_MODULES!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_spec_ships_as_package_data_with_each_request_s_params():
    assert '"CreateChatCompletionStreamResponse"' in raw_text()
    assert {"messages", "tools", "max_completion_tokens", "stream_options"} <= request_params("chat")
    assert request_params("embedding") == {"model", "input", "encoding_format", "dimensions", "user"}
    assert set(REQUEST_SCHEMAS) <= {"chat", "completion", "embedding", "moderation", "image_generation",
                                    "audio_speech", "audio_transcription"}
    with pytest.raises(KeyError, match="rerank"):
        request_params("rerank")


def test_an_error_case_names_a_known_kind_and_its_status():
    assert ErrorCase("rate_limit").expected_status == 429
    assert ErrorCase("server").expected_status == 502
    assert ErrorCase("bad_request", status=422).expected_status == 422
    with pytest.raises(ValueError, match="unknown error kind 'overloaded'"):
        ErrorCase("overloaded")


BROKEN_PLUGIN = '''
import pytest
from sidecar import (ChatCompletion, ChatCompletionChunk, Choice, ChunkChoice, Delta, Provider, ProviderError,
                     ResponseMessage, hookimpl)
from sidecar.testing import ProviderConformance


class Sloppy(Provider):
    """Answers locally, and gets the contract wrong in four ways."""

    name = "sloppy"
    capabilities = frozenset({"chat"})

    def supported_openai_params(self, model, capability=None):
        return ["stream", "temperature", "top_k"]  # top_k is not an OpenAI param

    async def chat(self, call):
        if call.model == "error-429":
            raise ProviderError(500, "sloppy is busy")  # a rate limit reported as a server failure
        if not call.stream:
            return ChatCompletion(id="c1", model=call.model,
                                  choices=[Choice(index=0, message=ResponseMessage(content="hi"))])
        return self._chunks(call)

    async def _chunks(self, call):
        yield ChatCompletionChunk(id="c1", model=call.model, choices=[ChunkChoice(index=0, delta=Delta(content="hi"))])
        if call.model == "cut":  # the upstream went away: passed off as a complete answer
            yield ChatCompletionChunk(id="c1", model=call.model,
                                      choices=[ChunkChoice(index=0, delta=Delta(), finish_reason="stop")])
        # otherwise: no chunk with a finish_reason at all


@hookimpl
def sidecar_providers():
    return [Sloppy()]


class TestSloppyConformance(ProviderConformance):
    plugin = __import__(__name__)
    chat_scenario = "chat"
    error_scenarios = {"error-429": "rate_limit"}

    def litellm_params(self, upstream, scenario):
        return {"model": f"sloppy/{scenario}"}
'''


def test_the_suite_fails_a_provider_that_breaks_the_contract(pytester):
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest('pytest_plugins = ["sidecar.testing"]\n')
    pytester.makepyfile(test_sloppy=BROKEN_PLUGIN)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=4, skipped=3)
    text = result.stdout.str()
    assert "sloppy/chat lists ['top_k'] for chat" in text
    assert "no chunk of the stream gave a finish_reason" in text
    assert "a cut stream was passed off as complete" in text
    assert "error-429 (plain): expected 429, got 502" in text
