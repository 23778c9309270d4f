"""``mock_response`` is answered by the core for any deployment (here the openai provider's, whose
fake upstream must then get nothing): a text as a normal answer, an error name as that failure."""

from __future__ import annotations

import pytest

from gateway_helpers import assert_error, assert_valid_stream, stream_text
from openai_helpers import dep, post, user
from openai_spec import assert_valid

PRICES = {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}


def group(name: str, fake, **params) -> dict:
    entry = dep(name, f"openai/{name}", fake.base_url, **params)
    entry["model_info"].update(PRICES)
    return entry


async def test_text_is_a_normal_answer_with_usage_headers_and_cost(make_client, openai_fake):
    client = await make_client({"model_list": [group("gpt-4o-mini", openai_fake)]})
    body = {"model": "gpt-4o-mini", "messages": user("two words here"), "mock_response": "made up reply"}
    status, answer, headers = await post(client, "/v1/chat/completions", body)
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"]["content"] == "made up reply"
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert headers["x-litellm-model-id"] == "dep-gpt-4o-mini"
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(3 * 1e-06 + 3 * 2e-06)

    resp = await client.post("/chat/completions", json={**body, "stream": True,
                                                        "stream_options": {"include_usage": True}})
    chunks = assert_valid_stream(await resp.read())
    assert stream_text(chunks) == "made up reply"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 3  # a word each
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert resp.headers["x-litellm-model-id"] == "dep-gpt-4o-mini"
    assert openai_fake.received == []


async def test_deployment_mock_response_serves_every_request(make_client, openai_fake):
    client = await make_client({"model_list": [group("canned", openai_fake, mock_response="from config")]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "canned", "messages": user("hi")})
    assert (status, answer["choices"][0]["message"]["content"]) == (200, "from config")
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "canned", "messages": user("hi"),
                                                                    "mock_response": "the body's wins"})
    assert answer["choices"][0]["message"]["content"] == "the body's wins"
    assert openai_fake.received == []


@pytest.mark.parametrize(("name", "status", "kind_fallbacks"), [
    ("litellm.RateLimitError", 429, "fallbacks"),
    ("litellm.InternalServerError", 502, "fallbacks"),
    ("litellm.ContextWindowExceededError", 400, "context_window_fallbacks"),
])
async def test_error_name_is_that_failure_for_the_router(make_client, openai_fake, name, status, kind_fallbacks):
    """The failure falls back as its kind does (a context-window one only through
    context_window_fallbacks), and without a fallback the client gets its status."""
    failing = group("failing", openai_fake, mock_response=name)
    client = await make_client({"model_list": [failing, group("gpt-4o-mini", openai_fake)],
                                "router_settings": {kind_fallbacks: [{"failing": ["gpt-4o-mini"]}]}})
    status_ok, answer, headers = await post(client, "/v1/chat/completions", {"model": "failing",
                                                                             "messages": user("hi")})
    assert status_ok == 200, answer
    assert answer["choices"][0]["message"]["content"] == "Hello from OpenAI. hi"
    assert headers["x-litellm-attempted-fallbacks"] == "1"
    assert headers["x-litellm-model-group"] == "gpt-4o-mini"
    assert [r.body["model"] for r in openai_fake.received] == ["gpt-4o-mini"]  # the mocked group sent nothing

    resp = await client.post("/v1/chat/completions", json={"model": "failing", "messages": user("hi"),
                                                           "disable_fallbacks": True})
    await assert_error(resp, status, mentions=(name.split(".")[1],))


async def test_rate_limit_is_retried_on_the_group(make_client, openai_fake):
    client = await make_client({"model_list": [group("gpt-4o-mini", openai_fake, num_retries=1)]})
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": user("hi"),
                                                           "mock_response": "litellm.RateLimitError",
                                                           "num_retries": 1})
    err = await assert_error(resp, 429)
    assert err["type"] == "rate_limit_error" and err["code"] == "mock_RateLimitError"
    assert resp.headers["x-litellm-attempted-retries"] == "1"
    assert "after 2 attempts" in err["message"]


async def test_error_object_and_embeddings(make_client, openai_fake):
    client = await make_client({"model_list": [group("gpt-4o-mini", openai_fake)]})
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o-mini", "messages": user("hi"),
        "mock_response": {"error": {"message": "quota gone", "type": "insufficient_quota", "code": 403}}})
    err = await assert_error(resp, 403, mentions=("quota gone",))
    assert err["code"] == "insufficient_quota"
    assert openai_fake.received == []
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "gpt-4o-mini", "input": ["a", "b"],
                                                              "mock_response": [0.5, 0.25]})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [[0.5, 0.25], [0.5, 0.25]]
    assert openai_fake.received == []
