"""Runtime model management over HTTP: /model/new, /model/update, PATCH /model/{id}/update,
/model/delete; persistence across restarts (and a kill -9); deployment ids."""

from __future__ import annotations

import json


from registry_helpers import AUTH, MASTER_KEY, add, cfg, chat_body, error_of, info_rows, start_upstream

# ---------------------------------------------------------------- add


async def test_add_answers_info_row_without_credentials_and_serves_next_request(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    added = await add(client, {
        "model_name": "added-mock",
        "litellm_params": {"model": "mock/added", "api_key": "sk-added-secret-000111", "temperature": 0.2},
        "model_info": {"description": "added over HTTP", "db_model": False},
    })
    assert set(added) == {"model_name", "litellm_params", "model_info"}
    assert added["model_name"] == "added-mock"
    assert added["litellm_params"] == {"model": "mock/added", "temperature": 0.2}
    info = added["model_info"]
    assert info["id"] and isinstance(info["id"], str)
    assert info["db_model"] is True
    assert info["description"] == "added over HTTP"
    assert "sk-added-secret-000111" not in json.dumps(added)

    # the very next request is served by it, and it is the row /model/info shows
    resp = await client.post("/v1/chat/completions", json=chat_body("added-mock", "ping"), headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "Mock reply to: ping"
    assert resp.headers["x-litellm-model-id"] == info["id"]
    assert await info_rows(client, litellm_model_id=info["id"]) == [added]


async def test_add_with_own_id_keeps_it(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    added = await add(client, {"model_name": "mine", "litellm_params": {"model": "mock/m"},
                               "model_info": {"id": "my-own-id"}})
    assert added["model_info"]["id"] == "my-own-id"
    assert added["model_info"]["db_model"] is True


# ---------------------------------------------------------------- update and patch


async def test_update_replaces_given_fields_and_keeps_unsent_credentials(make_client, tmp_path, aiohttp_server):
    up = await start_upstream(aiohttp_server)
    client = await make_client(cfg(tmp_path))
    added = await add(client, {
        "model_name": "upstreamed",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": up.base_url,
                           "api_key": "sk-upstream-key-abc123", "max_tokens": 7},
        "model_info": {"description": "old", "input_cost_per_token": 1e-3},
    })
    dep_id = added["model_info"]["id"]
    resp = await client.post("/chat/completions", json=chat_body("upstreamed"), headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert up.auth_headers[-1] == "Bearer sk-upstream-key-abc123"
    assert up.chats[-1]["model"] == "gpt-4o-mini" and up.chats[-1]["max_tokens"] == 7

    # what a client read from /model/info (no credentials) is what it sends back, edited
    resp = await client.post("/model/update", headers=AUTH, json={
        "model_name": "upstreamed-2",
        "litellm_params": {"model": "openai/gpt-4o", "temperature": 0.5},
        "model_info": {"id": dep_id, "description": "new"},
    })
    assert resp.status == 200, await resp.text()
    updated = await resp.json()
    assert updated["model_name"] == "upstreamed-2"
    assert updated["litellm_params"] == {"model": "openai/gpt-4o", "temperature": 0.5}  # max_tokens replaced away
    assert updated["model_info"]["id"] == dep_id and updated["model_info"]["db_model"] is True
    assert updated["model_info"]["description"] == "new"
    assert updated["model_info"]["input_cost_per_token"] != 1e-3  # model_info replaced too
    assert "sk-upstream-key-abc123" not in json.dumps(updated) and up.host not in json.dumps(updated)
    assert await info_rows(client, litellm_model_id=dep_id) == [updated]

    # the old name is gone, the new one serves with the kept key and api_base
    resp = await client.post("/chat/completions", json=chat_body("upstreamed"), headers=AUTH)
    await error_of(resp, 404, "upstreamed")
    resp = await client.post("/chat/completions", json=chat_body("upstreamed-2"), headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-litellm-model-id"] == dep_id
    assert up.auth_headers[-1] == "Bearer sk-upstream-key-abc123"
    assert up.chats[-1]["model"] == "gpt-4o"
    assert up.chats[-1]["temperature"] == 0.5 and "max_tokens" not in up.chats[-1]

    # a credential that is sent replaces the stored one
    resp = await client.post("/model/update", headers=AUTH, json={
        "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-rotated-key-def456"},
        "model_info": {"id": dep_id}})
    assert resp.status == 200, await resp.text()
    resp = await client.post("/chat/completions", json=chat_body("upstreamed-2"), headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert up.auth_headers[-1] == "Bearer sk-rotated-key-def456"


async def test_update_naming_only_the_id_keeps_model_info(make_client, tmp_path):
    """``model_info: {id}`` only names the deployment: the stored model_info is not wiped."""
    client = await make_client(cfg(tmp_path))
    added = await add(client, {"model_name": "m", "litellm_params": {"model": "mock/m"},
                               "model_info": {"input_cost_per_token": 5e-6, "description": "keep me"}})
    dep_id = added["model_info"]["id"]
    resp = await client.post("/model/update", headers=AUTH,
                             json={"model_name": "m2", "model_info": {"id": dep_id}})
    assert resp.status == 200, await resp.text()
    row = (await resp.json())
    assert row["model_name"] == "m2"
    assert row["model_info"]["input_cost_per_token"] == 5e-6
    assert row["model_info"]["description"] == "keep me"


async def test_patch_merges_key_by_key_and_keeps_credentials(make_client, tmp_path, aiohttp_server):
    up = await start_upstream(aiohttp_server)
    client = await make_client(cfg(tmp_path))
    added = await add(client, {
        "model_name": "patched",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": up.base_url,
                           "api_key": "sk-patch-key-777888", "temperature": 0.1, "max_tokens": 5},
        "model_info": {"description": "x", "input_cost_per_token": 1e-6},
    })
    dep_id = added["model_info"]["id"]
    resp = await client.patch(f"/model/{dep_id}/update", headers=AUTH, json={
        "litellm_params": {"temperature": 0.9}, "model_info": {"output_cost_per_token": 2e-6}})
    assert resp.status == 200, await resp.text()
    row = await resp.json()
    assert row["model_name"] == "patched"
    assert row["litellm_params"] == {"model": "openai/gpt-4o-mini", "temperature": 0.9, "max_tokens": 5}
    info = row["model_info"]
    assert (info["id"], info["db_model"]) == (dep_id, True)
    assert info["description"] == "x"
    assert info["input_cost_per_token"] == 1e-6 and info["output_cost_per_token"] == 2e-6
    assert "sk-patch-key-777888" not in json.dumps(row)

    resp = await client.post("/chat/completions", json=chat_body("patched"), headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert up.auth_headers[-1] == "Bearer sk-patch-key-777888"
    assert up.chats[-1]["temperature"] == 0.9 and up.chats[-1]["max_tokens"] == 5

    # only the name
    resp = await client.patch(f"/model/{dep_id}/update", headers=AUTH, json={"model_name": "renamed"})
    assert resp.status == 200, await resp.text()
    row2 = await resp.json()
    assert row2["model_name"] == "renamed"
    assert row2["litellm_params"] == row["litellm_params"]
    assert row2["model_info"]["output_cost_per_token"] == 2e-6
    resp = await client.post("/chat/completions", json=chat_body("renamed"), headers=AUTH)
    assert resp.status == 200 and up.auth_headers[-1] == "Bearer sk-patch-key-777888"


async def test_delete(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    added = await add(client, {"model_name": "doomed", "litellm_params": {"model": "mock/d"}})
    dep_id = added["model_info"]["id"]
    resp = await client.post("/model/delete", headers=AUTH, json={"id": dep_id})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["id"] == dep_id
    assert all(r["model_info"]["id"] != dep_id for r in await info_rows(client))
    await error_of(await client.get("/model/info", headers=AUTH, params={"litellm_model_id": dep_id}), 404)
    await error_of(await client.post("/chat/completions", json=chat_body("doomed"), headers=AUTH), 404, "doomed")
    await error_of(await client.post("/model/delete", headers=AUTH, json={"id": dep_id}), 404, dep_id)


# ---------------------------------------------------------------- bad input


async def test_bad_inputs_answer_openai_errors(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    config_id = (await info_rows(client))[0]["model_info"]["id"]
    added = await add(client, {"model_name": "ok", "litellm_params": {"model": "mock/ok"},
                               "model_info": {"id": "taken"}})
    assert added["model_info"]["id"] == "taken"

    err = await error_of(await client.post("/model/new", headers=AUTH, json={"litellm_params": {"model": "mock/x"}}),
                         400, "model_name")
    assert err["param"] == "model_name" and err["type"] == "invalid_request_error"
    err = await error_of(await client.post("/model/new", headers=AUTH,
                                           json={"model_name": "x", "litellm_params": {"api_key": "k"}}),
                         400, "litellm_params.model")
    assert err["param"] == "litellm_params.model"
    err = await error_of(await client.post("/model/new", headers=AUTH,
                                           json={"model_name": "x", "litellm_params": {"model": "nosuch/x"}}),
                         400, "nosuch", "mock", "openai", "echo", "azure")
    assert err["param"] == "litellm_params.model"
    # a duplicate id: of an API deployment, and of a config deployment
    await error_of(await client.post("/model/new", headers=AUTH, json={
        "model_name": "y", "litellm_params": {"model": "mock/y"}, "model_info": {"id": "taken"}}), 409, "taken")
    await error_of(await client.post("/model/new", headers=AUTH, json={
        "model_name": "y", "litellm_params": {"model": "mock/y"}, "model_info": {"id": config_id}}), 409)
    # unknown ids
    await error_of(await client.post("/model/update", headers=AUTH, json={
        "model_info": {"id": "nope"}, "litellm_params": {"model": "mock/z"}}), 404, "nope")
    await error_of(await client.patch("/model/nope/update", headers=AUTH, json={"model_name": "z"}), 404, "nope")
    await error_of(await client.post("/model/delete", headers=AUTH, json={"id": "nope"}), 404, "nope")
    # config deployments are edited in the config file
    await error_of(await client.post("/model/update", headers=AUTH, json={
        "model_info": {"id": config_id}, "model_name": "z"}), 409, "config file")
    await error_of(await client.patch(f"/model/{config_id}/update", headers=AUTH, json={"model_name": "z"}),
                   409, "config file")
    await error_of(await client.post("/model/delete", headers=AUTH, json={"id": config_id}), 409, "config file")
    # an update that does not name a deployment; an update making the deployment invalid
    await error_of(await client.post("/model/update", headers=AUTH, json={"model_name": "z"}), 400, "model_info")
    await error_of(await client.patch("/model/taken/update", headers=AUTH,
                                      json={"litellm_params": {"model": "nosuch/q"}}), 400, "nosuch")
    await error_of(await client.post("/model/delete", headers=AUTH, json={}), 400, "id")
    # malformed JSON and non-objects, on every management route
    for method, path in (("POST", "/model/new"), ("POST", "/model/update"), ("PATCH", "/model/taken/update"),
                         ("POST", "/model/delete")):
        for raw in (b"{not json", b"[1, 2]", b""):
            resp = await client.request(method, path, data=raw,
                                        headers={**AUTH, "Content-Type": "application/json"})
            await error_of(resp, 400)
    # nothing of the above changed the registry
    rows = await info_rows(client)
    assert [(r["model_name"], r["model_info"]["id"]) for r in rows] == [("config-mock", config_id), ("ok", "taken")]
    assert rows[1]["litellm_params"] == {"model": "mock/ok"}


async def test_master_key_required_on_every_management_and_info_route(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    added = await add(client, {"model_name": "k", "litellm_params": {"model": "mock/k"}})
    dep_id = added["model_info"]["id"]
    routes = [
        ("POST", "/model/new", {"model_name": "n", "litellm_params": {"model": "mock/n"}}),
        ("POST", "/model/update", {"model_info": {"id": dep_id}, "model_name": "k2"}),
        ("PATCH", f"/model/{dep_id}/update", {"model_name": "k3"}),
        ("POST", "/model/delete", {"id": dep_id}),
        ("GET", "/model/info", None), ("GET", "/v1/model/info", None), ("GET", "/model_group/info", None),
        ("GET", "/v1/models", None), ("GET", "/models", None), ("GET", "/api/models", None),
    ]
    for method, path, body in routes:
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"x-api-key": "sk-wrong"}):
            resp = await client.request(method, path, json=body, headers=headers)
            await error_of(resp, 401)
    rows = await info_rows(client)
    assert [r["model_name"] for r in rows] == ["config-mock", "k"]  # nothing changed
    # the key is accepted in each header clients use (Cline sends x-litellm-api-key)
    for headers in (AUTH, {"x-api-key": MASTER_KEY}, {"x-litellm-api-key": MASTER_KEY}):
        for method, path, body in routes[:3]:
            resp = await client.request(method, path, json=body, headers=headers)
            assert resp.status == 200, (path, headers, await resp.text())
    resp = await client.post("/model/delete", json={"id": dep_id}, headers={"x-litellm-api-key": MASTER_KEY})
    assert resp.status == 200, await resp.text()
