"""Deployment ids never collide silently."""

from __future__ import annotations

import logging

import pytest

from sidecar import keys
from sidecar.app import create_app
from sidecar.config import ConfigError, parse_config
from sidecar.registry import config_deployment_id

TWIN = {"model_name": "twin", "litellm_params": {"model": "mock/twin"}}


async def test_identical_config_entries_are_both_kept(make_client):
    client = await make_client({"model_list": [{**TWIN, "tpm": 100}, {**TWIN, "tpm": 200}]})
    first = config_deployment_id("twin", {"model": "mock/twin"})
    assert [d.id for d in client.app[keys.REGISTRY]] == [first, f"{first}-2"]
    [group] = (await (await client.get("/model_group/info")).json())["data"]
    assert group["tpm"] == 300


def test_two_entries_claiming_one_id_fail_at_start_up():
    with pytest.raises(ConfigError, match=r"\$\.model_list\[1\]\.model_info\.id: 'same' is already used"):
        create_app(parse_config({"model_list": [{**TWIN, "model_info": {"id": "same"}},
                                     {"model_name": "other", "litellm_params": {"model": "mock/o"},
                                      "model_info": {"id": "same"}}]}))


async def test_a_stored_deployment_whose_id_the_config_now_uses_is_skipped(make_client, make_config, aiohttp_client,
                                                                          caplog):
    client = await make_client({"model_list": [], "general_settings": {"master_key": "sk-m"}})
    resp = await client.post("/model/new", headers={"Authorization": "Bearer sk-m"}, json={
        "model_name": "from-api", "litellm_params": {"model": "mock/api"}, "model_info": {"id": "shared-id"}})
    assert resp.status == 200
    db_url = client.app[keys.CONFIG].general.database_url
    await client.close()
    config = make_config({"model_list": [{"model_name": "from-config", "litellm_params": {"model": "mock/cfg"},
                                          "model_info": {"id": "shared-id"}}],
                          "general_settings": {"database_url": db_url}})
    with caplog.at_level(logging.WARNING, logger="sidecar"):
        again = await aiohttp_client(create_app(config))
    [dep] = list(again.app[keys.REGISTRY])
    assert (dep.model_name, dep.db_model) == ("from-config", False)
    assert "skipping stored deployment shared-id" in caplog.text
