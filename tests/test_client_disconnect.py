"""A client that leaves mid-stream frees the upstream at once, even while the upstream is
silent (a model thinking), as ``sidecar serve`` runs it."""

from __future__ import annotations

import asyncio

import aiohttp
from fake_upstreams import OpenAIFake, start
from gateway_helpers import Server, write_config


async def test_leaving_a_silent_stream_closes_the_upstream_call(tmp_path, aiohttp_server):
    fake = await start(aiohttp_server, OpenAIFake())
    config = write_config(tmp_path / "c.yaml", {
        "model_list": [{"model_name": "thinker", "litellm_params": {
            "model": "openai/silent", "api_base": fake.base_url, "api_key": "sk-test-000000000"}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db"},
    })
    server = Server(config, tmp_path)
    try:
        await asyncio.to_thread(server.wait_ready)
        async with aiohttp.ClientSession() as session:
            resp = await session.post(server.url + "/v1/chat/completions", json={
                "model": "thinker", "stream": True, "messages": [{"role": "user", "content": "think"}]})
            first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
            assert b"thinking" in first
            resp.close()  # the client gives up while the upstream says nothing
        await asyncio.wait_for(fake.stream_abandoned.wait(), 5)
        assert server.proc.poll() is None
        assert "Traceback" not in server.output()
    finally:
        server.stop()


async def test_a_management_write_completes_when_its_client_leaves(tmp_path):
    config = write_config(tmp_path / "c.yaml", {
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", "master_key": "sk-m"}})
    server = Server(config, tmp_path)
    try:
        await asyncio.to_thread(server.wait_ready)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = b'{"model_name": "kept", "litellm_params": {"model": "mock/x"}, "model_info": {"id": "k1"}}'
        writer.write(b"POST /model/new HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-m\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()  # gone before any answer
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-m"}) as session:
            for _ in range(100):
                async with session.get(server.url + "/model/info?litellm_model_id=k1") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.05)
            assert resp.status == 200
            async with session.post(server.url + "/v1/chat/completions", json={
                    "model": "kept", "messages": [{"role": "user", "content": "hi"}]}) as chat:
                assert chat.status == 200
    finally:
        server.stop()
