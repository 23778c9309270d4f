"""Embeddings, moderations and the model list through the mock provider, with and without ``/v1``."""

from __future__ import annotations

import base64
import json
import math
import struct

import pytest

from gateway_helpers import PREFIXES, assert_error
from openai_spec import assert_valid

pytestmark = pytest.mark.parametrize("prefix", PREFIXES)

CONFIG_DIMENSIONS = 8  # mock-embedding's litellm_params.dimensions in conftest.MOCK_MODELS


async def embed(client, prefix: str, **body) -> dict:
    body.setdefault("model", "mock-embedding")
    resp = await client.post(f"{prefix}/embeddings", json=body)
    text = await resp.text()
    assert resp.status == 200, text
    data = json.loads(text)
    assert_valid(data, "CreateEmbeddingResponse")
    assert data["object"] == "list"
    assert data["model"] == "mock-embedding"
    assert [d["index"] for d in data["data"]] == list(range(len(data["data"])))
    assert all(d["object"] == "embedding" for d in data["data"])
    return data


def vectors(data: dict) -> list[list[float]]:
    return [d["embedding"] for d in data["data"]]


async def test_string_input(make_client, prefix):
    client = await make_client()
    data = await embed(client, prefix, input="the quick brown fox")
    [vec] = vectors(data)
    assert len(vec) == CONFIG_DIMENSIONS
    assert math.isclose(sum(v * v for v in vec), 1.0, abs_tol=1e-4)
    assert data["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    again = await embed(client, prefix, input="the quick brown fox")
    assert vectors(again) == [vec], "the mock is deterministic"


async def test_list_of_strings(make_client, prefix):
    client = await make_client()
    data = await embed(client, prefix, input=["first text", "second", "first text"])
    vecs = vectors(data)
    assert len(vecs) == 3
    assert vecs[0] == vecs[2] != vecs[1]
    single = await embed(client, prefix, input="second")
    assert vectors(single) == [vecs[1]]
    assert data["usage"]["prompt_tokens"] == 2 + 1 + 2


async def test_token_array(make_client, prefix):
    client = await make_client()
    data = await embed(client, prefix, input=[101, 2023, 102])
    assert len(vectors(data)) == 1
    assert data["usage"]["prompt_tokens"] == 3


async def test_list_of_token_arrays(make_client, prefix):
    client = await make_client()
    data = await embed(client, prefix, input=[[1, 2, 3], [4, 5], [1, 2, 3]])
    vecs = vectors(data)
    assert len(vecs) == 3 and vecs[0] == vecs[2] != vecs[1]
    assert data["usage"]["prompt_tokens"] == 8
    single = await embed(client, prefix, input=[4, 5])
    assert vectors(single) == [vecs[1]]


async def test_dimensions(make_client, prefix):
    client = await make_client()
    data = await embed(client, prefix, input=["a", "b"], dimensions=40)
    assert [len(v) for v in vectors(data)] == [40, 40]


async def test_base64_encoding_decodes_to_the_float_answer(make_client, prefix):
    client = await make_client()
    floats = vectors(await embed(client, prefix, input=["hello world", "bye"], dimensions=16))
    resp = await client.post(f"{prefix}/embeddings", json={
        "model": "mock-embedding", "input": ["hello world", "bye"], "dimensions": 16, "encoding_format": "base64"})
    assert resp.status == 200
    data = await resp.json()
    # OpenAI's schema types `embedding` as an array only; its API (and this gateway) sends a
    # base64 string when asked: check the rest of the response against the spec.
    as_floats = {**data, "data": [{**d, "embedding": [0.0]} for d in data["data"]]}
    assert_valid(as_floats, "CreateEmbeddingResponse")
    for item, expected in zip(data["data"], floats):
        assert isinstance(item["embedding"], str)
        raw = base64.b64decode(item["embedding"])
        assert len(raw) == 16 * 4
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(expected, abs=1e-6)


async def test_bad_embedding_input(make_client, prefix):
    client = await make_client()
    for bad in ([], [1, "a"], [[1], []], 5, None):
        resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-embedding", "input": bad})
        await assert_error(resp, 400, param="input")
    resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-embedding", "input": "x",
                                                          "encoding_format": "hex"})
    await assert_error(resp, 400, param="encoding_format")
    resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-embedding", "input": "x", "dimensions": 0})
    await assert_error(resp, 400, param="dimensions")


async def moderate(client, prefix: str, **body) -> dict:
    resp = await client.post(f"{prefix}/moderations", json=body)
    text = await resp.text()
    assert resp.status == 200, text
    data = json.loads(text)
    assert_valid(data, "CreateModerationResponse")
    return data


@pytest.mark.parametrize("with_model", [True, False])
async def test_moderations(make_client, prefix, with_model):
    client = await make_client()
    body = {"input": ["I will kill the process", "a calm sentence"]}
    if with_model:
        body["model"] = "mock-moderation"
    data = await moderate(client, prefix, **body)
    assert data["model"] == "mock-moderation"
    flagged, calm = data["results"]
    assert flagged["flagged"] is True
    assert flagged["categories"]["violence"] is True
    assert flagged["category_scores"]["violence"] > 0.5
    assert calm["flagged"] is False
    assert not any(calm["categories"].values())
    single = await moderate(client, prefix, input="kill", **({"model": "mock-moderation"} if with_model else {}))
    assert [r["flagged"] for r in single["results"]] == [True]


async def test_moderation_without_a_moderation_model(make_client, prefix):
    client = await make_client({"model_list": [{"model_name": "chat", "litellm_params": {"model": "echo/x"}}]})
    resp = await client.post(f"{prefix}/moderations", json={"input": "kill"})
    await assert_error(resp, 400, param="model")


async def test_models_list(make_client, prefix):
    client = await make_client({"model_list": [
        {"model_name": "mock-gpt", "litellm_params": {"model": "mock/a"}},
        {"model_name": "mock-gpt", "litellm_params": {"model": "mock/b"}},
        {"model_name": "mock-embedding", "litellm_params": {"model": "mock/e"}},
        {"model_name": "shout", "litellm_params": {"model": "echo/shout"}},
    ]})
    resp = await client.get(f"{prefix}/models")
    assert resp.status == 200
    data = await resp.json()
    assert_valid(data, "ListModelsResponse")
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["mock-gpt", "mock-embedding", "shout"]
    for card in data["data"]:
        assert card["object"] == "model"
        assert isinstance(card["created"], int) and card["created"] > 0
    assert {m["id"]: m["owned_by"] for m in data["data"]}["shout"] == "echo"
