"""Info endpoints over HTTP: /model/info, /v1/model/info, /model_group/info, /v1/models and
/models, /api/models; aggregation rules, wildcards, secrets never shown, and the info cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry_helpers import AUTH, MASTER_KEY, chat_body, error_of, start_upstream
from sidecar import catalog, keys

SEED_GROUP_KEYS = [
    "model_group", "providers", "max_input_tokens", "max_output_tokens", "input_cost_per_token",
    "output_cost_per_token", "mode", "tpm", "rpm", "supports_parallel_function_calling", "supports_vision",
    "supports_function_calling", "supported_openai_params",
]
ECHO_PARAMS = ["stream", "stream_options", "temperature", "max_tokens", "user"]
DEAD_BASE = "http://127.0.0.1:9/v1"  # never called by these tests


def cfg(tmp_path: Path, *models: dict, master_key: bool = True) -> dict:
    general = {"database_url": f"sqlite:///{tmp_path / 'info.db'}"}
    if master_key:
        general["master_key"] = MASTER_KEY
    return {"model_list": list(models), "general_settings": general}


async def get_json(client, path: str, **query) -> dict:
    resp = await client.get(path, headers=AUTH, params=query)
    assert resp.status == 200, (path, await resp.text())
    assert resp.content_type == "application/json"
    return await resp.json()


def dep(name: str, model: str, **params) -> dict:
    info = params.pop("model_info", None)
    out = {"model_name": name, "litellm_params": {"model": model, **params}}
    if info is not None:
        out["model_info"] = info
    return out


# ---------------------------------------------------------------- /model/info


async def test_model_info_rows_carry_catalog_plugin_and_override_fields(make_client, tmp_path):
    client = await make_client(cfg(
        tmp_path,
        dep("mini", "openai/gpt-4o-mini", api_base=DEAD_BASE),
        dep("mini-custom", "openai/gpt-4o-mini", api_base=DEAD_BASE,
            model_info={"input_cost_per_token": 1e-5, "output_cost_per_token": 3e-5, "max_input_tokens": 4096,
                        "supports_vision": False, "supports_computer_use": True, "mode": "chat"}),
        dep("echoed", "echo/anything"),
    ))
    facts = catalog.lookup("gpt-4o-mini", "openai")
    assert facts and facts["mode"] == "chat"
    for path in ("/model/info", "/v1/model/info"):
        rows = (await get_json(client, path))["data"]
        assert [r["model_name"] for r in rows] == ["mini", "mini-custom", "echoed"]
        for row in rows:
            assert set(row) == {"model_name", "litellm_params", "model_info"}
            info = row["model_info"]
            for field in ("id", "db_model", "mode", "max_input_tokens", "max_output_tokens", "input_cost_per_token",
                          "output_cost_per_token", "supported_openai_params", "litellm_provider",
                          "supports_vision", "supports_function_calling", "supports_prompt_caching",
                          "supports_computer_use", "supports_parallel_function_calling"):
                assert field in info, (row["model_name"], field)
            assert info["db_model"] is False
            assert all(isinstance(v, bool) for k, v in info.items() if k.startswith("supports_"))
        mini, custom, echoed = (r["model_info"] for r in rows)
        assert rows[0]["litellm_params"] == {"model": "openai/gpt-4o-mini"}
        for field in ("mode", "max_input_tokens", "max_output_tokens", "input_cost_per_token",
                      "output_cost_per_token", "cache_read_input_token_cost"):
            assert mini[field] == facts[field], field
        for flag in ("supports_vision", "supports_function_calling", "supports_prompt_caching"):
            assert mini[flag] is facts.get(flag, False) is True
        assert mini["litellm_provider"] == "openai"
        assert "tools" in mini["supported_openai_params"] and "temperature" in mini["supported_openai_params"]
        # model_info overrides the catalog; what is not overridden still comes from it
        assert custom["input_cost_per_token"] == 1e-5 and custom["output_cost_per_token"] == 3e-5
        assert custom["max_input_tokens"] == 4096
        assert custom["max_output_tokens"] == facts["max_output_tokens"]
        assert custom["supports_vision"] is False and custom["supports_computer_use"] is True
        assert custom["supports_function_calling"] is True
        # a model the catalog does not know: nulls and falses, the plugin's params
        assert echoed["litellm_provider"] == "echo"
        assert echoed["max_input_tokens"] is None and echoed["input_cost_per_token"] is None
        assert echoed["supports_vision"] is False
        assert echoed["supported_openai_params"] == ECHO_PARAMS


# ---------------------------------------------------------------- /model_group/info


async def test_model_group_info_has_exactly_the_seed_fields_and_combines_by_the_rules(make_client, tmp_path):
    client = await make_client(cfg(
        tmp_path,
        dep("mixed", "echo/no-facts", model_info={"max_output_tokens": 999_999}),
        dep("mixed", "openai/gpt-4o-mini", api_base=DEAD_BASE, tpm=100, rpm=10),
        dep("mixed", "openai/gpt-4o", api_base=DEAD_BASE, tpm=50),
        dep("mixed", "echo/other", model_info={"input_cost_per_token": 1.0, "supports_vision": False}),
        dep("plain", "mock/plain"),
        dep("embed", "echo/e", model_info={"mode": "embedding"}),
        dep("embed", "openai/gpt-4o-mini", api_base=DEAD_BASE),
    ))
    body = await get_json(client, "/model_group/info")
    assert set(body) == {"data"}
    groups = {g["model_group"]: g for g in body["data"]}
    assert list(groups) == ["mixed", "plain", "embed"]
    for g in body["data"]:
        assert list(g) == SEED_GROUP_KEYS
    mini, big = catalog.lookup("gpt-4o-mini", "openai"), catalog.lookup("gpt-4o", "openai")
    mixed = groups["mixed"]
    assert mixed["providers"] == ["echo", "openai"]  # ordered union
    assert mixed["max_input_tokens"] == max(mini["max_input_tokens"], big["max_input_tokens"])
    assert mixed["max_output_tokens"] == 999_999  # max, whichever deployment has it
    assert mixed["input_cost_per_token"] == 1.0
    assert mixed["output_cost_per_token"] == max(mini["output_cost_per_token"], big["output_cost_per_token"])
    assert mixed["mode"] == "chat"  # the first known (the echo deployment before has none)
    assert (mixed["tpm"], mixed["rpm"]) == (150, 10)
    assert mixed["supports_vision"] is True  # any
    assert mixed["supports_function_calling"] is True
    assert mixed["supports_parallel_function_calling"] is True
    # the params every deployment accepts: echo's list intersected with openai's
    assert sorted(mixed["supported_openai_params"]) == sorted(ECHO_PARAMS)

    plain = groups["plain"]
    assert plain["providers"] == ["mock"]
    assert (plain["tpm"], plain["rpm"]) == (None, None)
    assert (plain["max_input_tokens"], plain["max_output_tokens"], plain["mode"]) == (None, None, None)
    assert (plain["input_cost_per_token"], plain["output_cost_per_token"]) == (0.0, 0.0)
    assert plain["supports_vision"] is False and plain["supports_function_calling"] is False
    assert groups["embed"]["mode"] == "embedding"  # first, though the second is chat

    for path_group in ("mixed", "plain"):
        assert (await get_json(client, "/model_group/info", model_group=path_group))["data"] == [groups[path_group]]
    assert await get_json(client, "/model_group/info", model_group="no-such-group") == {"data": []}


# ---------------------------------------------------------------- credentials never shown

SECRETS = {
    "api_key": "sk-topsecret-apikey-0123456789",
    "aws_secret_access_key": "AWSSECRETxyzw0987654321",
    "aws_access_key_id": "AKIAEXAMPLEKEYID0001",
    "azure_ad_token": "eyJazureADtokenSECRET.abc.def",
    "vertex_credentials": "{\"private_key\": \"PRIVATEKEYVALUE123\"}",
    "client_secret": "clientsecretvalue-555",
    "extra_headers": {"Authorization": "Bearer sk-header-secret-000999"},
}
API_BASE = "http://secret-upstream-host.internal:8443/v1"
WEBHOOK = "https://webuser:webpa55word@hooks.example.org/cb?key=querysecretvalue42"
NESTED = {"inner": {"api_key": "sk-nested-secret-4242424242", "note": "fine"}}
MUST_NOT_APPEAR = [
    *(v for v in SECRETS.values() if isinstance(v, str)), "sk-header-secret-000999", "secret-upstream-host",
    "webuser", "webpa55word", "querysecretvalue42", "sk-nested-secret-4242424242", "PRIVATEKEYVALUE123",
]


def secret_params(model: str, **extra) -> dict:
    return {"model": model, "api_base": API_BASE, "webhook_url": WEBHOOK, "extra_body": NESTED,
            **SECRETS, **extra}


async def test_no_credential_ever_appears_in_any_info_answer(make_client, tmp_path):
    config_models = [
        {"model_name": "c-openai", "litellm_params": secret_params("openai/gpt-4o-mini")},
        {"model_name": "c-group", "litellm_params": secret_params("echo/e1")},
        {"model_name": "c-group", "litellm_params": secret_params("mock/m1")},
        {"model_name": "openai/*", "litellm_params": secret_params("openai/*")},
        {"model_name": "c-azure", "litellm_params": secret_params("azure/my-deployment", api_version="2024-10-21"),
         "model_info": {"access_groups": ["ag"], "team_id": "t1"}},
    ]
    client = await make_client(cfg(tmp_path, *config_models))
    answers: list[str] = []

    async def keep(resp) -> None:
        text = await resp.text()
        assert resp.status == 200, text
        answers.append(text)

    resp = await client.post("/model/new", headers=AUTH,
                             json={"model_name": "a-new", "litellm_params": secret_params("openai/gpt-4o")})
    added_id = json.loads(await resp.text())["model_info"]["id"]
    await keep(resp)
    resp = await client.post("/model/new", headers=AUTH,
                             json={"model_name": "c-group", "litellm_params": secret_params("mock/m2"),
                                   "model_info": {"id": "grouped"}})
    await keep(resp)
    await keep(await client.post("/model/update", headers=AUTH, json={
        "model_info": {"id": added_id, "description": "x"}, "litellm_params": secret_params("openai/gpt-4o")}))
    await keep(await client.patch(f"/model/{added_id}/update", headers=AUTH,
                                  json={"litellm_params": {"api_key": "sk-patched-in-secret-777", "temperature": 1}}))
    await keep(await client.patch("/model/grouped/update", headers=AUTH, json={"model_info": {"note": "n"}}))
    ids = [r["model_info"]["id"] for r in (await get_json(client, "/model/info"))["data"]]
    for path in ("/model/info", "/v1/model/info"):
        await keep(await client.get(path, headers=AUTH))
        for dep_id in ids:
            await keep(await client.get(path, headers=AUTH, params={"litellm_model_id": dep_id}))
    for group in (None, "c-openai", "c-group", "openai/*", "openai/gpt-4o-mini", "openai/tts-1", "c-azure"):
        await keep(await client.get("/model_group/info", headers=AUTH,
                                    params={"model_group": group} if group else {}))
    for path in ("/v1/models", "/models"):
        for query in ({}, {"return_wildcard_routes": "true"}, {"include_model_access_groups": "true"},
                      {"team_id": "t1"}):
            await keep(await client.get(path, headers=AUTH, params=query))
    for query in ({}, {"provider": "openai"}, {"provider": "azure"}, {"capability": "chat"}):
        await keep(await client.get("/api/models", headers=AUTH, params=query))

    assert len(answers) > 30
    everything = "\n".join(answers)
    assert "a-new" in everything and "c-azure" in everything and "openai/tts-1" in everything
    for secret in MUST_NOT_APPEAR + ["sk-patched-in-secret-777"]:
        assert secret not in everything, secret
    # URLs in other params keep what is not a credential
    row = (await get_json(client, "/model/info", litellm_model_id=ids[0]))["data"][0]
    assert row["litellm_params"]["webhook_url"] == "https://hooks.example.org/cb"
    assert row["litellm_params"]["extra_body"] == {"inner": {"note": "fine"}}
    for key in ("api_key", "api_base", "aws_secret_access_key", "aws_access_key_id", "azure_ad_token",
                "vertex_credentials", "client_secret", "extra_headers"):
        assert key not in row["litellm_params"]


# ---------------------------------------------------------------- wildcards


async def test_wildcards_route_with_the_captured_name_exact_and_longer_patterns_win(
        make_client, tmp_path, aiohttp_server):
    up = await start_upstream(aiohttp_server)
    client = await make_client(cfg(
        tmp_path,
        dep("openai/*", "openai/*", api_base=up.base_url, api_key="sk-any", model_info={"id": "any"}),
        dep("openai/gpt-*", "openai/gpt-*", api_base=up.base_url, api_key="sk-gpt", model_info={"id": "gpt"}),
        dep("openai/gpt-4o", "mock/exact-4o", model_info={"id": "exact"}),
        dep("team/*", "openai/*", api_base=up.base_url, api_key="sk-team", model_info={"id": "team"}),
    ))

    async def chat(model: str) -> str:
        resp = await client.post("/v1/chat/completions", json=chat_body(model), headers=AUTH)
        assert resp.status == 200, await resp.text()
        return resp.headers["x-litellm-model-id"]

    assert await chat("openai/o3-mini") == "any"
    assert up.chats[-1]["model"] == "o3-mini" and up.auth_headers[-1] == "Bearer sk-any"
    assert await chat("openai/gpt-4o-mini") == "gpt"  # longer pattern
    assert up.chats[-1]["model"] == "gpt-4o-mini" and up.auth_headers[-1] == "Bearer sk-gpt"
    # the captured model's catalog prices give the cost (the fake reports 3 + 2 tokens)
    resp = await client.post("/v1/chat/completions", json=chat_body("openai/gpt-4o-mini"), headers=AUTH)
    facts = catalog.lookup("gpt-4o-mini", "openai")
    assert float(resp.headers["x-litellm-response-cost"]) == pytest.approx(
        3 * facts["input_cost_per_token"] + 2 * facts["output_cost_per_token"])
    calls = len(up.chats)
    assert await chat("openai/gpt-4o") == "exact"  # exact name over both patterns
    assert len(up.chats) == calls
    assert await chat("team/gpt-4.1") == "team"
    assert up.chats[-1]["model"] == "gpt-4.1"
    await error_of(await client.post("/v1/chat/completions", json=chat_body("openai/"), headers=AUTH), 404)

    # /model_group/info for a name a pattern serves
    tts = (await get_json(client, "/model_group/info", model_group="openai/tts-1"))["data"]
    assert len(tts) == 1 and list(tts[0]) == SEED_GROUP_KEYS
    assert tts[0]["model_group"] == "openai/tts-1"
    assert tts[0]["providers"] == ["openai"]
    assert tts[0]["mode"] == catalog.lookup("tts-1", "openai")["mode"] == "audio_speech"
    mini = (await get_json(client, "/model_group/info", model_group="openai/gpt-4o-mini"))["data"][0]
    facts = catalog.lookup("gpt-4o-mini", "openai")
    assert (mini["max_input_tokens"], mini["input_cost_per_token"]) == (facts["max_input_tokens"],
                                                                        facts["input_cost_per_token"])
    assert (await get_json(client, "/model_group/info", model_group="elsewhere/x"))["data"] == []

    # /v1/models: the catalog names the patterns cover; the patterns only when asked
    listed = [m["id"] for m in (await get_json(client, "/v1/models"))["data"]]
    assert len(listed) == len(set(listed))
    openai_names = catalog.models_for_provider("openai")
    assert "tts-1" in openai_names and "gpt-4o-mini" in openai_names
    assert {f"openai/{n}" for n in openai_names} <= set(listed)
    assert {f"team/{n}" for n in openai_names} <= set(listed)
    assert not [i for i in listed if "*" in i]
    with_routes = [m["id"] for m in (await get_json(client, "/v1/models", return_wildcard_routes="true"))["data"]]
    assert {"openai/*", "openai/gpt-*", "team/*"} <= set(with_routes)
    assert set(with_routes) - set(listed) == {"openai/*", "openai/gpt-*", "team/*"}
    assert [m["id"] for m in (await get_json(client, "/models"))["data"]] == listed


# ---------------------------------------------------------------- /v1/models team_id and access groups


async def test_models_team_id_and_access_groups(make_client, tmp_path):
    client = await make_client(cfg(
        tmp_path,
        dep("public", "mock/p", model_info={"access_groups": ["beta", "everyone"]}),
        dep("team-a-model", "mock/a", model_info={"team_id": "team-a", "access_groups": ["beta"]}),
        dep("team-b-model", "mock/b", model_info={"team_id": "team-b", "access_groups": ["gamma"]}),
    ))

    async def ids(path: str = "/v1/models", **query) -> list[str]:
        body = await get_json(client, path, **query)
        assert body["object"] == "list"
        for card in body["data"]:
            assert set(card) == {"id", "object", "created", "owned_by"} and card["object"] == "model"
        return [m["id"] for m in body["data"]]

    models = ["public", "team-a-model", "team-b-model"]
    assert await ids() == models  # no team asked: everything
    assert await ids("/models") == models
    assert await ids(team_id="team-a") == ["public", "team-a-model"]
    assert await ids(team_id="team-b") == ["public", "team-b-model"]
    assert await ids(team_id="team-c") == ["public"]
    assert await ids(include_model_access_groups="false") == models
    assert await ids(include_model_access_groups="0") == models
    for name in ("include_model_access_groups", "return_wildcard_routes", "only_model_access_groups"):
        await error_of(await client.get("/v1/models", params={name: "maybe"}, headers=AUTH), 400, name, "maybe")
    with_groups = await ids(include_model_access_groups="true")
    assert [i for i in with_groups if i in models] == models
    assert sorted(i for i in with_groups if i not in models) == ["beta", "everyone", "gamma"]
    cards = (await get_json(client, "/v1/models", include_model_access_groups="true"))["data"]
    assert {c["id"]: c["owned_by"] for c in cards}["gamma"] == "access_group"
    assert sorted(await ids(team_id="team-a", include_model_access_groups="true")) == sorted(
        ["public", "team-a-model", "beta", "everyone"])
    assert sorted(await ids(only_model_access_groups="true")) == ["beta", "everyone", "gamma"]
    assert sorted(await ids(team_id="team-b", only_model_access_groups="true")) == ["beta", "everyone", "gamma"]
    assert await ids(team_id="team-c", only_model_access_groups="true") == ["beta", "everyone"]


# ---------------------------------------------------------------- /api/models (vLLora)


async def test_api_models_in_vllora_shape_with_filters(make_client, tmp_path):
    client = await make_client(cfg(
        tmp_path,
        dep("gpt-4o-mini", "openai/gpt-4o-mini", api_base=DEAD_BASE),
        dep("embedder", "openai/text-embedding-3-small", api_base=DEAD_BASE),
        dep("mock-chat", "mock/mock-gpt", model_info={"mode": "chat", "input_cost_per_token": 2e-6,
                                                      "output_cost_per_token": 4e-6, "max_input_tokens": 8000,
                                                      "supports_vision": True}),
    ))
    body = await get_json(client, "/api/models")
    assert set(body) == {"models"}
    models = {m["id"]: m for m in body["models"]}
    assert list(models) == ["gpt-4o-mini", "embedder", "mock-chat"]
    for m in body["models"]:
        assert {"id", "provider", "capabilities", "context_window", "pricing", "features"} <= set(m)
        assert set(m["pricing"]) == {"input", "output"}
        assert isinstance(m["capabilities"], list) and isinstance(m["features"], list)
    facts = catalog.lookup("gpt-4o-mini", "openai")
    mini = models["gpt-4o-mini"]
    assert mini["provider"] == "openai" and mini["capabilities"] == ["chat"]
    assert mini["context_window"] == facts["max_input_tokens"] == 128000
    assert mini["pricing"]["input"] == pytest.approx(facts["input_cost_per_token"] * 1e6) == 0.15
    assert mini["pricing"]["output"] == pytest.approx(facts["output_cost_per_token"] * 1e6) == 0.6
    assert {"vision", "function_calling"} <= set(mini["features"])
    assert models["embedder"]["capabilities"] == ["embedding"]
    mock = models["mock-chat"]
    assert mock["provider"] == "mock" and mock["pricing"] == {"input": 2.0, "output": 4.0}
    assert mock["context_window"] == 8000 and "vision" in mock["features"]

    async def ids(**query) -> list[str]:
        return [m["id"] for m in (await get_json(client, "/api/models", **query))["models"]]

    assert await ids(provider="openai") == ["gpt-4o-mini", "embedder"]
    assert await ids(provider="mock") == ["mock-chat"]
    assert await ids(provider="anthropic") == []
    assert await ids(capability="chat") == ["gpt-4o-mini", "mock-chat"]
    assert await ids(capability="embedding") == ["embedder"]
    assert await ids(capability="image_generation") == []
    assert await ids(provider="openai", capability="chat") == ["gpt-4o-mini"]
    err = await error_of(await client.get("/api/models", headers=AUTH, params={"capability": "telepathy"}), 400,
                         "telepathy", "chat", "embedding", "image_generation", "moderation", "rerank")
    assert err["param"] == "capability"
    await error_of(await client.get("/api/models", headers=AUTH, params={"capability": ""}), 400, "capability")


async def test_api_models_expands_wildcards_from_the_catalog(make_client, tmp_path):
    client = await make_client(cfg(tmp_path, dep("openai/*", "openai/*", api_base=DEAD_BASE)))
    models = {m["id"]: m for m in (await get_json(client, "/api/models", provider="openai"))["models"]}
    assert "openai/*" not in models
    assert models["openai/gpt-4o-mini"]["context_window"] == 128000
    assert models["openai/tts-1"]["capabilities"] == ["audio_speech"]
    embeddings = await get_json(client, "/api/models", capability="embedding")
    assert "openai/text-embedding-3-small" in {m["id"] for m in embeddings["models"]}
    assert all(m["capabilities"] == ["embedding"] for m in embeddings["models"])


async def test_model_group_info_expands_a_wildcard_group_into_its_models(make_client, tmp_path):
    client = await make_client(cfg(tmp_path, dep("openai/*", "openai/*", api_base=DEAD_BASE),
                                   dep("openai/gpt-4o", "openai/gpt-4o", api_base=DEAD_BASE, model_info={"rpm": 7})))
    data = (await get_json(client, "/model_group/info"))["data"]
    names = [r["model_group"] for r in data]
    assert len(names) == len(set(names))  # one row a name
    rows = {r["model_group"]: r for r in data}
    assert "openai/*" in rows  # the route itself, as before
    assert rows["openai/gpt-4o-mini"]["max_input_tokens"] == 128000
    assert rows["openai/gpt-4o-mini"]["providers"] == ["openai"]
    assert rows["openai/text-embedding-3-small"]["mode"] == "embedding"
    assert rows["openai/gpt-4o"]["rpm"] == 7  # an exact group keeps its own row, not the pattern's


# ---------------------------------------------------------------- the info cache


async def test_info_answers_come_from_the_cache_until_the_registry_changes(make_client, tmp_path, monkeypatch):
    import sidecar.handlers.info as handlers

    builds = {"groups": 0, "rows": 0}
    real_groups, real_row = handlers.all_groups, handlers.model_info_row

    def counting_groups(*args, **kwargs):
        builds["groups"] += 1
        return real_groups(*args, **kwargs)

    def counting_row(*args, **kwargs):
        builds["rows"] += 1
        return real_row(*args, **kwargs)

    monkeypatch.setattr(handlers, "all_groups", counting_groups)
    monkeypatch.setattr(handlers, "model_info_row", counting_row)
    client = await make_client(cfg(tmp_path, dep("first", "mock/first")))
    app = client.app
    cache, registry = app[keys.INFO_CACHE], app[keys.REGISTRY]

    first = await client.get("/model_group/info", headers=AUTH)
    first_body = await first.read()
    version = registry.version
    second = await client.get("/model_group/info", headers=AUTH)
    assert await second.read() == first_body
    assert builds["groups"] == 1  # the second answer was not rebuilt
    assert cache.get(("group", None)) == first_body
    await get_json(client, "/model/info")
    await get_json(client, "/v1/model/info")
    assert builds["rows"] == 1

    resp = await client.post("/model/new", headers=AUTH, json={"model_name": "second", "litellm_params": {
        "model": "mock/second"}})
    assert resp.status == 200
    assert registry.version > version
    groups = (await get_json(client, "/model_group/info"))["data"]
    assert [g["model_group"] for g in groups] == ["first", "second"]
    assert builds["groups"] == 2
    assert [r["model_name"] for r in (await get_json(client, "/model/info"))["data"]] == ["first", "second"]
    assert builds["rows"] == 3  # rebuilt once: one row per deployment

    # updates and deletes invalidate too
    second_id = (await resp.json())["model_info"]["id"]
    resp = await client.patch(f"/model/{second_id}/update", headers=AUTH, json={"model_info": {
        "max_input_tokens": 777}})
    assert resp.status == 200
    group = (await get_json(client, "/model_group/info", model_group="second"))["data"]
    assert group[0]["max_input_tokens"] == 777
    assert (await client.post("/model/delete", headers=AUTH, json={"id": second_id})).status == 200
    assert await get_json(client, "/model_group/info", model_group="second") == {"data": []}
    assert [g["model_group"] for g in (await get_json(client, "/model_group/info"))["data"]] == ["first"]
