"""The clients that read /v1/model/info (or /model/info), each read the way it reads it.

Each ``read_*`` function mimics the parsing logic of one client (field names, fallbacks,
filters); the tests assert each gets the context windows, prices and flags it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry_helpers import AUTH, MASTER_KEY, chat_body, error_of
from sidecar import catalog

DEAD_BASE = "http://127.0.0.1:9/v1"

CLAUDE_LIKE_INFO = {
    "mode": "chat", "max_input_tokens": 200_000, "max_output_tokens": 8192, "supports_vision": True,
    "supports_prompt_caching": True, "supports_computer_use": True, "input_cost_per_token": 3e-6,
    "output_cost_per_token": 1.5e-5, "cache_creation_input_token_cost": 3.75e-6,
    "cache_read_input_token_cost": 3e-7,
}
MODELS = [
    {"model_name": "claude-like", "litellm_params": {"model": "mock/claude-like", "api_key": "sk-c-000000001"},
     "model_info": CLAUDE_LIKE_INFO},
    {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": DEAD_BASE,
                                                     "api_key": "sk-o-000000001"}},
    {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": DEAD_BASE}},
    {"model_name": "pair", "litellm_params": {"model": "mock/pair-a"}, "model_info": {"max_input_tokens": 1000}},
    {"model_name": "pair", "litellm_params": {"model": "echo/pair-b"}, "model_info": {"max_input_tokens": 2000}},
]


def cfg(tmp_path: Path) -> dict:
    return {"model_list": MODELS, "general_settings": {"master_key": MASTER_KEY,
                                                      "database_url": f"sqlite:///{tmp_path / 'clients.db'}"}}


@pytest.fixture
async def client(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    resp = await client.post("/model/new", headers=AUTH, json={
        "model_name": "added-at-runtime", "litellm_params": {"model": "openai/gpt-4o", "api_base": DEAD_BASE},
        "model_info": {"supports_computer_use": True}})
    assert resp.status == 200, await resp.text()
    return client


# ---------------------------------------------------------------- readers

def _usable(row: dict[str, Any]) -> bool:
    """Roo Code's and Cline's filter: a name, a model_info, a non-empty litellm_params.model."""
    return bool(row.get("model_name") and row.get("model_info") and (row.get("litellm_params") or {}).get("model"))


def _per_million(value: Any) -> float | None:
    return value * 1_000_000 if value else None


def read_roo_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Roo Code's getLiteLLMModels (GET /v1/model/info, Bearer key)."""
    models = {}
    for row in body.get("data") or []:
        if not _usable(row):
            continue
        info = row["model_info"]
        models[row["model_name"]] = {
            "maxTokens": info.get("max_output_tokens") or info.get("max_tokens") or 8192,
            "contextWindow": info.get("max_input_tokens") or 200_000,
            "supportsImages": bool(info.get("supports_vision")),
            "supportsComputerUse": bool(info.get("supports_computer_use")),
            "supportsPromptCache": bool(info.get("supports_prompt_caching")),
            "inputPrice": _per_million(info.get("input_cost_per_token")),
            "outputPrice": _per_million(info.get("output_cost_per_token")),
            "cacheWritesPrice": _per_million(info.get("cache_creation_input_token_cost")),
            "cacheReadsPrice": _per_million(info.get("cache_read_input_token_cost")),
            "litellmModel": row["litellm_params"]["model"],
        }
    return models


def read_cline(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Cline's LiteLLM model refresh (GET /v1/model/info with ``x-litellm-api-key``)."""
    models = {}
    for row in body["data"]:
        if not _usable(row):
            continue
        info = row["model_info"]
        models[row["model_name"]] = {
            "maxTokens": info.get("max_output_tokens") or info.get("max_tokens") or -1,
            "contextWindow": info.get("max_input_tokens") or 0,
            "supportsImages": info.get("supports_vision") or False,
            "supportsPromptCache": info.get("supports_prompt_caching") or False,
            "inputPrice": (info.get("input_cost_per_token") or 0) * 1e6,
            "outputPrice": (info.get("output_cost_per_token") or 0) * 1e6,
            "cacheWritesPrice": (info.get("cache_creation_input_token_cost") or 0) * 1e6,
            "cacheReadsPrice": (info.get("cache_read_input_token_cost") or 0) * 1e6,
        }
    return models


def read_openhands(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    """OpenHands' init_model_info for ``litellm_proxy/<model>``: the row named like the model."""
    name = model.removeprefix("litellm_proxy/")
    row = next((r for r in body["data"] if r["model_name"] == name), None)
    if row is None:
        return None
    info = row["model_info"]
    return {
        "max_input_tokens": info.get("max_input_tokens"),
        "max_output_tokens": info.get("max_output_tokens") or info.get("max_tokens"),
        "vision": bool(info.get("supports_vision")),
    }


def read_goose(body: dict[str, Any]) -> list[str]:
    """goose's LiteLLM provider: model names, wildcard routes skipped."""
    return [r["model_name"] for r in body["data"] if "/*" not in r["model_name"]]


def read_aider_desk(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """AiderDesk: rows grouped by model_name (one entry per group, its deployments' info)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in body["data"]:
        groups.setdefault(row["model_name"], []).append(row["model_info"])
    return groups


# ---------------------------------------------------------------- tests


async def model_info(client, path: str = "/v1/model/info", headers: dict | None = None) -> dict:
    resp = await client.get(path, headers=headers if headers is not None else AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_roo_code(client):
    models = read_roo_code(await model_info(client))
    assert set(models) == {"claude-like", "gpt-4o-mini", "openai/*", "pair", "added-at-runtime"}
    claude = models["claude-like"]
    assert claude == {
        "maxTokens": 8192, "contextWindow": 200_000, "supportsImages": True, "supportsComputerUse": True,
        "supportsPromptCache": True, "inputPrice": pytest.approx(3.0), "outputPrice": pytest.approx(15.0),
        "cacheWritesPrice": pytest.approx(3.75), "cacheReadsPrice": pytest.approx(0.3),
        "litellmModel": "mock/claude-like",
    }
    facts = catalog.lookup("gpt-4o-mini", "openai")
    mini = models["gpt-4o-mini"]
    assert mini["contextWindow"] == facts["max_input_tokens"] == 128_000
    assert mini["maxTokens"] == facts["max_output_tokens"]
    assert mini["supportsImages"] is True and mini["supportsPromptCache"] is True
    assert mini["inputPrice"] == pytest.approx(0.15) and mini["outputPrice"] == pytest.approx(0.6)
    assert mini["cacheReadsPrice"] == pytest.approx(facts["cache_read_input_token_cost"] * 1e6)
    assert models["added-at-runtime"]["supportsComputerUse"] is True
    assert models["added-at-runtime"]["contextWindow"] == catalog.lookup("gpt-4o", "openai")["max_input_tokens"]
    # the same through /model/info
    assert read_roo_code(await model_info(client, "/model/info")) == models


async def test_cline_with_x_litellm_api_key(client):
    await error_of(await client.get("/v1/model/info", headers={"x-litellm-api-key": "sk-wrong"}), 401)
    body = await model_info(client, headers={"x-litellm-api-key": MASTER_KEY, "accept": "application/json"})
    assert all(_usable(r) for r in body["data"])  # no row is dropped by the filter
    models = read_cline(body)
    claude = models["claude-like"]
    assert (claude["maxTokens"], claude["contextWindow"]) == (8192, 200_000)
    assert claude["supportsImages"] is True and claude["supportsPromptCache"] is True
    assert claude["inputPrice"] == pytest.approx(3.0) and claude["outputPrice"] == pytest.approx(15.0)
    assert claude["cacheWritesPrice"] == pytest.approx(3.75) and claude["cacheReadsPrice"] == pytest.approx(0.3)
    assert models["gpt-4o-mini"]["contextWindow"] == 128_000
    assert models["gpt-4o-mini"]["maxTokens"] > 0


async def test_openhands_reads_limits_and_the_response_cost_header(client):
    body = await model_info(client)
    info = read_openhands(body, "litellm_proxy/claude-like")
    assert info == {"max_input_tokens": 200_000, "max_output_tokens": 8192, "vision": True}
    mini = read_openhands(body, "litellm_proxy/gpt-4o-mini")
    assert mini["max_input_tokens"] == 128_000 and mini["vision"] is True and mini["max_output_tokens"] > 0
    assert read_openhands(body, "litellm_proxy/unknown") is None

    resp = await client.post("/v1/chat/completions", headers=AUTH,
                             json=chat_body("claude-like", "how much does this cost"))
    assert resp.status == 200, await resp.text()
    usage = (await resp.json())["usage"]
    cost = float(resp.headers["x-litellm-response-cost"])
    assert cost > 0
    assert cost == pytest.approx(usage["prompt_tokens"] * 3e-6 + usage["completion_tokens"] * 1.5e-5)


async def test_goose_skips_wildcard_routes(client):
    names = read_goose(await model_info(client, "/model/info"))
    assert "openai/*" not in names
    assert names == ["claude-like", "gpt-4o-mini", "pair", "pair", "added-at-runtime"]


async def test_aider_desk_groups_rows_by_model_name(client):
    groups = read_aider_desk(await model_info(client))
    assert list(groups) == ["claude-like", "gpt-4o-mini", "openai/*", "pair", "added-at-runtime"]
    assert [i["max_input_tokens"] for i in groups["pair"]] == [1000, 2000]
    assert [i["litellm_provider"] for i in groups["pair"]] == ["mock", "echo"]
    assert len({i["id"] for i in groups["pair"]}) == 2
    assert groups["claude-like"][0]["input_cost_per_token"] == 3e-6
