"""Inputs that used to slip through and fail later: deployment fields of the wrong type, and
JSON nested deeper than a parser should follow. Each is a 400 (or a start-up error) naming the
field, never a 500."""

from __future__ import annotations

import pytest

from sidecar.config import ConfigError, parse_config

AUTH = {"Authorization": "Bearer sk-master"}
MASTER = {"general_settings": {"master_key": "sk-master"}, "model_list": [
    {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}}]}


@pytest.mark.parametrize(("litellm_params", "model_info", "param"), [
    ({"timeout": "abc"}, {}, "litellm_params.timeout"),
    ({"timeout": [1]}, {}, "litellm_params.timeout"),
    ({"api_key": 42}, {}, "litellm_params.api_key"),
    ({}, {"input_cost_per_token": "free"}, "model_info.input_cost_per_token"),
    ({}, {"max_input_tokens": "lots"}, "model_info.max_input_tokens"),
    ({}, {"supports_vision": "yes"}, "model_info.supports_vision"),
    ({}, {"access_groups": "beta"}, "model_info.access_groups"),
])
async def test_model_new_checks_field_types(make_client, litellm_params, model_info, param):
    client = await make_client(MASTER)
    resp = await client.post("/model/new", headers=AUTH, json={
        "model_name": "bad", "litellm_params": {"model": "mock/x", **litellm_params}, "model_info": model_info})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == param and param in error["message"]
    info = await (await client.get("/model/info", headers=AUTH)).json()
    assert [row["model_name"] for row in info["data"]] == ["mock-gpt"]  # nothing was stored


async def test_patch_checks_field_types_too(make_client):
    client = await make_client(MASTER)
    added = await (await client.post("/model/new", headers=AUTH, json={
        "model_name": "ok", "litellm_params": {"model": "mock/x"}, "model_info": {"id": "m1"}})).json()
    assert added["model_info"]["id"] == "m1"
    resp = await client.patch("/model/m1/update", headers=AUTH, json={"model_info": {"output_cost_per_token": "x"}})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "model_info.output_cost_per_token"
    chat = await client.post("/v1/chat/completions", headers=AUTH,
                             json={"model": "ok", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status == 200


def test_config_model_info_of_the_wrong_type_fails_at_start_up():
    with pytest.raises(ConfigError, match=r"\$\.model_list\[0\]\.model_info\.input_cost_per_token"):
        parse_config({"model_list": [{"model_name": "a", "litellm_params": {"model": "mock/a"},
                                      "model_info": {"input_cost_per_token": "cheap"}}]})


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/model/new"])
async def test_deeply_nested_json_is_a_400(make_client, path):
    client = await make_client(MASTER)
    resp = await client.post(path, headers={**AUTH, "Content-Type": "application/json"},
                             data=b'{"model": "mock-gpt", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert resp.status == 400
    assert "nested too deeply" in (await resp.json())["error"]["message"]


def test_numbers_yaml_reads_as_strings_are_accepted_as_numbers():
    config = parse_config({"model_list": [{"model_name": "a", "litellm_params": {"model": "mock/a"},
                                           "model_info": {"input_cost_per_token": "1e-06", "note": "kept"}}]})
    info = config.model_list[0].model_info
    assert info["input_cost_per_token"] == 1e-06 and isinstance(info["input_cost_per_token"], float)
    assert info["note"] == "kept"


async def test_deep_nesting_inside_litellm_params_is_a_400(make_client):
    client = await make_client(MASTER)
    nested: object = "leaf"
    for _ in range(700):  # shallow enough for the JSON decoder, deep for a recursive walk
        nested = {"x": nested}
    resp = await client.post("/model/new", headers=AUTH, json={
        "model_name": "deep", "litellm_params": {"model": "mock/x", "extra": nested}})
    assert resp.status == 400
    assert "nested too deeply" in (await resp.json())["error"]["message"]
