"""``POST /v1/rerank`` (and ``/rerank``, ``/v2/rerank``) in the core: Cohere's body checked, routed
through the router to the mock provider's word-overlap reranker, priced per search unit."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_helpers import assert_envelope, post

from sidecar.app import create_app
from sidecar.config import load_config

DOCS = ["Paris is the capital of France", "Berlin is in Germany", "the capital city of France is lovely"]
RERANK_MODELS = [
    {"model_name": "mock-rerank", "litellm_params": {"model": "mock/mock-rerank"},
     "model_info": {"id": "dep-rerank", "mode": "rerank", "input_cost_per_query": 0.002}},
    {"model_name": "broken-rerank", "model_info": {"id": "dep-broken"},
     "litellm_params": {"model": "mock/broken", "mock_response": "litellm.InternalServerError", "num_retries": 0}},
    {"model_name": "chat-only", "litellm_params": {"model": "groq/llama-3.1-8b-instant", "api_key": "gsk-unused"}},
]


@pytest.fixture
async def client(make_client):
    return await make_client({"model_list": RERANK_MODELS})


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
async def test_rerank_ranks_by_the_router_and_prices_search_units(client, path):
    status, answer, headers = await post(client, path, {
        "model": "mock-rerank", "query": "capital of France", "documents": DOCS, "top_n": 2})
    assert status == 200, answer
    assert set(answer) == {"id", "results", "meta"} and answer["id"].startswith("rerank-mock-")
    assert answer["results"] == [{"index": 0, "relevance_score": 1.0}, {"index": 2, "relevance_score": 1.0}]
    assert answer["meta"] == {"billed_units": {"search_units": 1}}
    assert headers["x-litellm-model-id"] == "dep-rerank"
    assert headers["x-litellm-model-group"] == "mock-rerank"
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(0.002)


async def test_rerank_returns_documents_and_ranks_objects_on_rank_fields(client):
    docs = [{"title": "Germany", "body": "capital Berlin"}, {"title": "France capital", "body": "Paris"}]
    status, answer, _ = await post(client, "/v1/rerank", {
        "model": "mock-rerank", "query": "France capital", "documents": docs, "rank_fields": ["title"],
        "return_documents": True})
    assert status == 200, answer
    assert answer["results"] == [{"index": 1, "relevance_score": 1.0, "document": docs[1]},
                                 {"index": 0, "relevance_score": 0.0, "document": docs[0]}]
    status, answer, _ = await post(client, "/v1/rerank", {
        "model": "mock-rerank", "query": "Berlin", "documents": ["in Berlin", "in Rome"], "return_documents": True})
    assert answer["results"][0] == {"index": 0, "relevance_score": 1.0, "document": {"text": "in Berlin"}}


async def test_rerank_falls_back_like_chat(client):
    status, answer, headers = await post(client, "/v1/rerank", {
        "model": "broken-rerank", "query": "Berlin", "documents": DOCS, "fallbacks": ["mock-rerank"]})
    assert status == 200, answer
    assert answer["results"][0]["index"] == 1
    assert (headers["x-litellm-model-group"], headers["x-litellm-attempted-fallbacks"]) == ("mock-rerank", "1")


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"documents": DOCS}, "query", "missing required field `query`"),
    ({"query": "", "documents": DOCS}, "query", "Expected `str` of length >= 1"),
    ({"query": "q", "documents": []}, "documents", "Expected `array` of length >= 1"),
    ({"query": "q"}, "documents", "missing required field `documents`"),
    ({"query": "q", "documents": [3]}, "documents[0]", "Expected `str | object`"),
    ({"query": "q", "documents": DOCS, "top_n": 0}, "top_n", "Expected `int` >= 1"),
    ({"query": "q", "documents": DOCS, "max_tokens_per_doc": 0}, "max_tokens_per_doc", "Expected `int` >= 1"),
    ({"query": "q", "documents": DOCS, "return_documents": "yes"}, "return_documents", "Expected `bool | null`"),
])
async def test_rerank_body_errors_name_the_field(client, body, param, words):
    status, answer, _ = await post(client, "/v1/rerank", {"model": "mock-rerank", **body})
    assert status == 400
    error = assert_envelope(answer)
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert words in error["message"]


@pytest.mark.parametrize(("model", "status", "code"), [("chat-only", 400, "unsupported_capability"),
                                                       ("nope", 404, "model_not_found")])
async def test_rerank_needs_a_model_that_reranks(client, model, status, code):
    got, answer, _ = await post(client, "/v1/rerank", {"model": model, "query": "q", "documents": DOCS})
    assert got == status
    assert assert_envelope(answer)["code"] == code


async def test_the_default_config_reranks_offline(aiohttp_client, monkeypatch, tmp_path):
    monkeypatch.setenv("SIDECAR_DATABASE_URL", f"sqlite:///{tmp_path}/default.db")
    config = load_config(Path(__file__).resolve().parent.parent / "config" / "sidecar.yaml")
    client = await aiohttp_client(create_app(config))
    status, answer, headers = await post(client, "/rerank", {
        "model": "mock-rerank", "query": "red apple", "documents": ["a green pear", "a red apple", "red wine"]})
    assert status == 200, answer
    assert [(r["index"], r["relevance_score"]) for r in answer["results"]] == [(1, 1.0), (2, 0.5), (0, 0.0)]
    assert headers["x-litellm-response-cost"] == "0.0"
