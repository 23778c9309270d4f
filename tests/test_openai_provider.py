"""The ``openai`` plugin (OpenAI, Azure OpenAI, OpenAI-compatible servers) through the gateway,
against in-process fake upstreams that speak each provider's real wire format: what goes
upstream and what comes back."""

from __future__ import annotations

import base64
import struct

import aiohttp
import pytest
from fake_upstreams import (
    HUGE_REPLY,
    embedding_vector,
)
from openai_helpers import (
    AZURE_KEY,
    KEY,
    WEATHER_TOOL,
    assert_envelope,
    decode,
    dep,
    post,
    stream,
    user,
)
from openai_spec import assert_valid

# ---------------------------------------------------------------- what goes upstream


async def test_chat_body_goes_upstream_as_sent_minus_gateway_keys(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url)]})
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, *user("Weather in Paris?")],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "n": 2, "stop": ["\n\n", "END"], "seed": 7, "logprobs": True, "top_logprobs": 2,
        "max_completion_tokens": 64, "user": "user-42",
        "top_k": 40, "repetition_penalty": 1.1, "guided_json": {"type": "object"},
        "metadata": {"trace_id": "t-1"}, "drop_params": False,
    }
    status, answer, headers = await post(client, "/v1/chat/completions", body)
    assert status == 200, answer
    assert headers["x-litellm-model-id"] == "dep-gpt-4o-mini"
    assert_valid(answer, "CreateChatCompletionResponse")
    assert [c["message"]["tool_calls"][0]["function"]["name"] for c in answer["choices"]] == ["get_weather"] * 2
    got = openai_fake.last
    assert (got.method, got.path, got.query) == ("POST", "/v1/chat/completions", {})
    assert got.headers["Authorization"] == f"Bearer {KEY}"
    assert got.headers["Content-Type"] == "application/json"
    expected = {k: v for k, v in body.items() if k not in ("metadata", "drop_params", "mock_response")}
    assert got.body == {**expected, "model": "gpt-4o-mini"}


async def test_extra_litellm_params_are_defaults_the_client_overrides(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url,
                                                   temperature=0.1, max_tokens=50, timeout=30, stream_timeout=20,
                                                   max_retries=1, organization="org-fake", rpm=100)]})
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "gpt-4o-mini", "messages": user("hi"), "temperature": 0.7})
    assert status == 200, answer
    assert openai_fake.last.body == {"model": "gpt-4o-mini", "messages": user("hi"), "temperature": 0.7,
                                     "max_tokens": 50}
    assert openai_fake.last.headers["OpenAI-Organization"] == "org-fake"
    status, answer, _ = await post(client, "/chat/completions", {"model": "gpt-4o-mini", "messages": user("hi")})
    assert status == 200, answer
    assert openai_fake.last.body == {"model": "gpt-4o-mini", "messages": user("hi"), "temperature": 0.1,
                                     "max_tokens": 50}


async def test_litellm_deployment_settings_never_go_upstream(make_client, openai_fake):
    """Pricing, routing and credential keys of ``litellm_params`` are LiteLLM's, not request params."""
    settings = {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 1e-08,
                "custom_llm_provider": "openai", "num_retries": 2, "weight": 3, "order": 1, "tags": ["eu"],
                "base_model": "gpt-4o-mini", "region_name": "eu", "litellm_credential_name": "main",
                "client_secret": "cs-very-secret-value", "aws_secret_access_key": "aws-very-secret-value",
                "tenant_id": "tenant-1", "client_id": "client-1"}
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url,
                                                   top_p=0.9, **settings)]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": user("hi")})
    assert status == 200, answer
    assert openai_fake.last.body == {"model": "gpt-4o-mini", "messages": user("hi"), "top_p": 0.9}


async def test_wildcard_deployment_sends_the_requested_model(make_client, openai_fake):
    client = await make_client({"model_list": [dep("openai/*", "openai/*", openai_fake.base_url)]})
    status, answer, headers = await post(client, "/v1/chat/completions",
                                         {"model": "openai/gpt-4.1-nano", "messages": user("hi")})
    assert status == 200, answer
    assert openai_fake.last.body["model"] == "gpt-4.1-nano"
    assert headers["x-litellm-model-id"] == "dep-openai/*"


# ---------------------------------------------------------------- answers


async def test_chat_answer_is_openai_valid(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url)]})
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "gpt-4o-mini", "messages": user("Say hi"), "logprobs": True})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"]["content"] == "Hello from OpenAI. Say hi"
    assert answer["choices"][0]["logprobs"]["content"][0]["token"] == "Hello"
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]


async def test_streaming_chunks_are_valid_and_end_with_done(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url)]})
    resp, chunks = await stream(client, {"model": "gpt-4o-mini", "messages": user("Say hi")})
    assert resp.headers["x-litellm-model-id"] == "dep-gpt-4o-mini"
    assert len(chunks) > 3
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        assert "usage" not in chunk or chunk["usage"] is None
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from OpenAI. Say hi"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert openai_fake.last.body["stream"] is True


async def test_stream_include_usage_ends_with_a_usage_chunk(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url)]})
    _, chunks = await stream(client, {"model": "gpt-4o-mini", "messages": user("Say hi"),
                                      "stream_options": {"include_usage": True}})
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    assert openai_fake.last.body["stream_options"] == {"include_usage": True}
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == 5
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 5


async def test_stream_in_other_legal_sse_framing(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/odd-framing", openai_fake.base_url)]})
    _, chunks = await stream(client, {"model": "m", "messages": user("Say hi")})
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from OpenAI. Say hi"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_stream_event_larger_than_a_read_buffer(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/huge", openai_fake.base_url)]})
    _, chunks = await stream(client, {"model": "m", "messages": user("hi")})
    for chunk in chunks:
        assert "error" not in chunk, chunk
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == HUGE_REPLY


async def test_tool_call_plain_and_streamed(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-4o-mini", "openai/gpt-4o-mini", openai_fake.base_url)]})
    body = {"model": "gpt-4o-mini", "messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL],
            "tool_choice": "auto"}
    status, answer, _ = await post(client, "/v1/chat/completions", body)
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert (call["type"], call["function"]["name"]) == ("function", "get_weather")
    assert decode(call["function"]["arguments"]) == {"location": "Paris"}

    _, chunks = await stream(client, body)
    name, args, ids = "", "", set()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        for piece in chunk["choices"][0]["delta"].get("tool_calls") or []:
            assert piece["index"] == 0
            ids.update([piece["id"]] if "id" in piece else [])
            name += piece.get("function", {}).get("name") or ""
            args += piece.get("function", {}).get("arguments") or ""
    assert len(chunks) > 4  # arguments arrive in pieces
    assert (ids, name, decode(args)) == ({call["id"]}, "get_weather", {"location": "Paris"})
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_custom_tool_call_passes_through(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt-5", "openai/gpt-5", openai_fake.base_url)]})
    tool = {"type": "custom", "custom": {"name": "code_exec", "description": "Runs Python"}}
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "gpt-5", "messages": user("Weather?"), "tools": [tool]})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_fake0002", "type": "custom", "custom": {"name": "code_exec", "input": "print('Paris')"}}]
    assert openai_fake.last.body["tools"] == [tool]


async def test_embeddings_float_and_base64_pass_through(make_client, openai_fake):
    client = await make_client({"model_list": [
        dep("text-embedding-3-small", "openai/text-embedding-3-small", openai_fake.base_url)]})
    body = {"model": "text-embedding-3-small", "input": ["one", "two words"], "dimensions": 6}
    status, answer, headers = await post(client, "/v1/embeddings", {**body, "encoding_format": "float"})
    assert status == 200, answer
    assert headers["x-litellm-model-id"] == "dep-text-embedding-3-small"
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [embedding_vector(0, 6), embedding_vector(1, 6)]
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert openai_fake.last.body == {**body, "encoding_format": "float", "model": "text-embedding-3-small"}

    status, answer, _ = await post(client, "/v1/embeddings", {**body, "encoding_format": "base64"})
    assert status == 200, answer
    assert openai_fake.last.body["encoding_format"] == "base64"
    decoded = [list(struct.unpack("<6f", base64.b64decode(d["embedding"]))) for d in answer["data"]]
    assert decoded == [embedding_vector(0, 6), embedding_vector(1, 6)]

    status, answer, _ = await post(client, "/v1/embeddings", {"model": "text-embedding-3-small",
                                                              "input": [[1, 2, 3], [4, 5]]})
    assert status == 200, answer
    assert openai_fake.last.body["input"] == [[1, 2, 3], [4, 5]]
    assert answer["usage"]["prompt_tokens"] == 5


async def test_moderations(make_client, openai_fake):
    client = await make_client({"model_list": [
        dep("omni-moderation-latest", "openai/omni-moderation-latest", openai_fake.base_url)]})
    status, answer, headers = await post(client, "/v1/moderations", {"model": "omni-moderation-latest",
                                                                     "input": ["I will kill it", "hello"]})
    assert status == 200, answer
    assert headers["x-litellm-model-id"] == "dep-omni-moderation-latest"
    assert_valid(answer, "CreateModerationResponse")
    assert [r["flagged"] for r in answer["results"]] == [True, False]
    assert openai_fake.last.body == {"model": "omni-moderation-latest", "input": ["I will kill it", "hello"]}
    # without a model, the configured moderation deployment answers
    status, answer, _ = await post(client, "/v1/moderations", {"input": "hello"})
    assert status == 200, answer
    assert openai_fake.last.body == {"model": "omni-moderation-latest", "input": "hello"}


async def test_provider_lists_upstream_models(openai_fake):
    from sidecar.plugins import collect_providers, get_plugin_manager

    provider = collect_providers(get_plugin_manager())["openai"]
    async with aiohttp.ClientSession() as session:
        names = await provider.list_models({"api_base": openai_fake.base_url, "api_key": KEY}, session)
    assert names == ["gpt-4o-mini", "omni-moderation-latest", "text-embedding-3-small"]
    assert openai_fake.last.headers["Authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------- vLLM-like servers


@pytest.mark.parametrize("prefix", ["openai", "hosted_vllm"])
async def test_vllm_params_pass_and_quirks_are_normalised(make_client, vllm_fake, prefix, monkeypatch):
    monkeypatch.delenv("HOSTED_VLLM_API_KEY", raising=False)
    model = f"{prefix}/meta-llama/Llama-3.1-8B-Instruct"
    entry = {"model_name": "llama", "litellm_params": {"model": model, "api_base": vllm_fake.base_url}}
    client = await make_client({"model_list": [entry]})
    extra = {"top_k": 40, "repetition_penalty": 1.05, "min_p": 0.1, "guided_json": {"type": "object"},
             "chat_template_kwargs": {"enable_thinking": True}, "logprobs": True}
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "llama", "messages": user("hi"), **extra})
    assert status == 200, answer
    assert vllm_fake.last.body == {"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": user("hi"), **extra}
    assert "Authorization" not in vllm_fake.last.headers
    assert_valid(answer, "CreateChatCompletionResponse")
    assert "system_fingerprint" not in answer and "prompt_logprobs" not in answer
    assert answer["choices"][0]["message"]["reasoning_content"] == "Thinking about it."
    assert answer["choices"][0]["message"]["content"] == "Hello from vLLM. hi"

    _, chunks = await stream(client, {"model": "llama", "messages": user("hi"),
                                      "stream_options": {"include_usage": True}})
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        assert "system_fingerprint" not in chunk
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Hello from vLLM. hi"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


async def test_null_ish_finish_reasons_are_normalised(make_client, vllm_fake):
    client = await make_client({"model_list": [
        {"model_name": "quirky", "litellm_params": {"model": "hosted_vllm/quirky", "api_base": vllm_fake.base_url}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "quirky", "messages": user("hi")})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["finish_reason"] == "stop"
    _, chunks = await stream(client, {"model": "quirky", "messages": user("hi")})
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]


async def test_a_tool_call_without_an_id_gets_one(make_client, vllm_fake):
    client = await make_client({"model_list": [
        {"model_name": "m", "litellm_params": {"model": "hosted_vllm/no-tool-id", "api_base": vllm_fake.base_url}}]})
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "m", "messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL]})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and len(call["id"]) > 20
    assert call["function"]["name"] == WEATHER_TOOL["function"]["name"]


async def test_vllm_embeddings(make_client, vllm_fake):
    client = await make_client({"model_list": [
        {"model_name": "bge", "litellm_params": {"model": "hosted_vllm/BAAI/bge-m3", "api_base": vllm_fake.base_url}}]})
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "bge", "input": "hello"})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert answer["data"][0]["embedding"] == embedding_vector(0, 4)
    assert vllm_fake.last.body == {"model": "BAAI/bge-m3", "input": "hello"}


# ---------------------------------------------------------------- Azure OpenAI


async def test_azure_chat_url_version_and_key_header(make_client, azure_fake):
    entry = {"model_name": "gpt-4o", "model_info": {"id": "dep-azure"},
             "litellm_params": {"model": "azure/my-gpt4o-deployment", "api_base": azure_fake.root_url,
                                "api_key": AZURE_KEY, "api_version": "2024-10-21"}}
    client = await make_client({"model_list": [entry]})
    status, answer, headers = await post(client, "/v1/chat/completions", {"model": "gpt-4o", "messages": user("hi")})
    assert status == 200, answer
    assert headers["x-litellm-model-id"] == "dep-azure"
    assert_valid(answer, "CreateChatCompletionResponse")
    assert "prompt_filter_results" not in answer
    assert answer["choices"][0]["message"]["content"] == "Hello from Azure. hi"
    got = azure_fake.last
    assert got.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert got.query == {"api-version": "2024-10-21"}
    assert got.headers["api-key"] == AZURE_KEY
    assert "Authorization" not in got.headers

    for include_usage in (True, False):
        _, chunks = await stream(client, {"model": "gpt-4o", "messages": user("hi"),
                                          "stream_options": {"include_usage": include_usage}})
        # Azure's prompt-filter chunk (choices: [], object: "") and its content-filter annotation
        # (a choice without delta) must not reach the client
        for chunk in chunks:
            assert_valid(chunk, "CreateChatCompletionStreamResponse")
        assert all(c["object"] == "chat.completion.chunk" and c["id"] for c in chunks)
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
            "Hello from Azure. hi"
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finishes == [None] * (len(finishes) - 1) + ["stop"]
        if include_usage:
            assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


async def test_azure_embeddings_and_default_api_version(make_client, azure_fake):
    entry = {"model_name": "embed", "litellm_params": {"model": "azure/my-embedder", "api_base": azure_fake.root_url,
                                                       "api_key": AZURE_KEY}}
    client = await make_client({"model_list": [entry]})
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": ["a", "b"]})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert len(answer["data"]) == 2
    assert azure_fake.last.path == "/openai/deployments/my-embedder/embeddings"
    assert azure_fake.last.query["api-version"]  # the plugin's default version


async def test_azure_wrong_key_is_a_401_with_azures_message(make_client, azure_fake):
    entry = {"model_name": "gpt-4o", "litellm_params": {"model": "azure/dep", "api_base": azure_fake.root_url,
                                                        "api_key": "ffffffffffffffffffffffffffffffff"}}
    client = await make_client({"model_list": [entry]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "gpt-4o", "messages": user("hi")})
    assert status == 401
    error = assert_envelope(answer)
    assert "Access denied due to invalid subscription key" in error["message"]
    assert error["code"] == "401"
    assert "ffffffffffffffffffffffffffffffff" not in error["message"]
