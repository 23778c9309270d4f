"""Behaviour LiteLLM users count on: extra_body merged into the body, provider-specific answer
fields kept, rate-limit headers passed on, and GET /v1/models/{id}."""

from __future__ import annotations

import msgspec
from aiohttp import web
from fake_upstreams import OpenAIFake, start
from openai_helpers import KEY, dep, user
from openai_spec import assert_valid


async def test_extra_body_in_the_request_is_merged_and_checked(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt", "openai/gpt-4o-mini", openai_fake.base_url)]})
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt", "messages": user("hi"), "extra_body": {"top_k": 5, "metadata": {"trace": "t1"}}})
    assert resp.status == 200
    sent = openai_fake.last.body
    assert sent["top_k"] == 5 and "extra_body" not in sent and "metadata" not in sent

    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt", "messages": user("hi"), "extra_body": {"api_base": "http://127.0.0.1:9/v1"}})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "api_base"


async def test_extra_body_in_litellm_params_is_merged(make_client, openai_fake):
    client = await make_client({"model_list": [
        dep("gpt", "openai/gpt-4o-mini", openai_fake.base_url, extra_body={"repetition_penalty": 1.1})]})
    resp = await client.post("/v1/chat/completions", json={"model": "gpt", "messages": user("hi")})
    assert resp.status == 200
    sent = openai_fake.last.body
    assert sent["repetition_penalty"] == 1.1 and "extra_body" not in sent


async def test_citations_and_reasoning_from_the_upstream_are_kept(make_client, aiohttp_server):
    answer = {
        "id": "chatcmpl-p", "object": "chat.completion", "created": 1, "model": "sonar",
        "citations": ["https://example.org/a"],
        "search_results": [{"title": "A", "url": "https://example.org/a"}],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "42", "reasoning": "thought about it"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }

    async def chat(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    server = await aiohttp_server(app)
    client = await make_client({"model_list": [dep("sonar", "perplexity/sonar", str(server.make_url("/v1")))]})
    resp = await client.post("/v1/chat/completions", json={"model": "sonar", "messages": user("?")})
    body = await resp.json()
    assert_valid(body, "CreateChatCompletionResponse")
    assert body["citations"] == answer["citations"]
    assert body["search_results"] == answer["search_results"]
    assert body["choices"][0]["message"]["reasoning"] == "thought about it"


async def test_rate_limit_headers_reach_the_client(make_client, aiohttp_server):
    fake = await start(aiohttp_server, OpenAIFake(api_key=KEY))
    client = await make_client({"model_list": [dep("gpt", "openai/error-429", fake.base_url)]})
    resp = await client.post("/v1/chat/completions", json={"model": "gpt", "messages": user("hi")})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "20"
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"


async def test_retrieve_a_model(make_client):
    client = await make_client({"model_list": [
        {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}},
        {"model_name": "mock/*", "litellm_params": {"model": "mock/*"}}]})
    for path, name in (("/v1/models/mock-gpt", "mock-gpt"), ("/models/mock/anything", "mock/anything")):
        resp = await client.get(path)
        assert resp.status == 200
        card = msgspec.json.decode(await resp.read())
        assert_valid(card, "Model")
        assert (card["id"], card["owned_by"]) == (name, "mock")
    missing = await client.get("/v1/models/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "model_not_found"
