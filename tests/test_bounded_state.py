"""State that grows with what clients send stays bounded: per-name info of wildcard
deployments, round-robin counters, and the model_not_found message."""

from __future__ import annotations

from sidecar import keys
from sidecar.info import INFO_CACHE_PER_DEPLOYMENT


async def test_a_wildcard_keeps_a_bounded_info_cache(make_client):
    client = await make_client({"model_list": [
        {"model_name": "mock/*", "litellm_params": {"model": "mock/*"}, "model_info": {"id": "w"}},
        {"model_name": "mock/*", "litellm_params": {"model": "mock/*"}, "model_info": {"id": "w2"}}]})
    for i in range(INFO_CACHE_PER_DEPLOYMENT + 60):
        resp = await client.post("/v1/chat/completions", json={
            "model": f"mock/name-{i}", "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status == 200
        assert (await client.get(f"/model_group/info?model_group=mock/other-{i}")).status == 200
    registry = client.app[keys.REGISTRY]
    for dep in registry:
        assert 0 < len(dep.info_cache) <= INFO_CACHE_PER_DEPLOYMENT
    router = client.app[keys.ROUTER]
    assert set(router.state.stats) <= {"w", "w2"}  # the router's state is per deployment, not per name asked
    served = {(await client.post("/v1/chat/completions", json={
        "model": f"mock/x{i}", "messages": [{"role": "user", "content": "hi"}]})).headers["x-litellm-model-id"]
        for i in range(64)}  # (simple-shuffle picks at random: 64 asks miss one of two 1 time in 2**63)
    assert served == {"w", "w2"}  # both still serve, whatever the name asked


async def test_model_not_found_lists_a_bounded_number_of_names(make_client):
    models = [{"model_name": f"m{i:03}", "litellm_params": {"model": "mock/m"}} for i in range(300)]
    client = await make_client({"model_list": models})
    resp = await client.post("/v1/chat/completions", json={"model": "nope", "messages": [
        {"role": "user", "content": "hi"}]})
    assert resp.status == 404
    message = (await resp.json())["error"]["message"]
    assert "m000" in message and "m019" in message and "m020" not in message
    assert "and 280 more" in message
