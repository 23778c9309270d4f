"""Moderations without a `model`: the sidecar picks a moderation deployment."""

from __future__ import annotations

from fake_upstreams import OpenAIFake, start


async def test_moderation_without_model_picks_a_moderation_model_by_catalog_mode(make_client, aiohttp_server):
    fake = await start(aiohttp_server, OpenAIFake())
    client = await make_client({"model_list": [
        {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": fake.base_url}},
        {"model_name": "omni-mod", "litellm_params": {"model": "openai/omni-moderation-latest",
                                                       "api_base": fake.base_url}},
    ]})
    resp = await client.post("/v1/moderations", json={"input": "hello"})
    assert resp.status == 200
    assert fake.last.path.endswith("/moderations")
    assert fake.last.body["model"] == "omni-moderation-latest"  # the catalog says its mode is moderation
