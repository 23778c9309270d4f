"""A client that leaves mid-stream frees the upstream at once, even while the upstream is
silent (a model thinking), as ``sidecar serve`` runs it."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from fake_upstreams import OpenAIFake, start
from gateway_helpers import Server, until, write_config

from sidecar import keys
from sidecar.app import create_app
from sidecar.handlers import management


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
        await asyncio.wait_for(fake.stream_abandoned.wait(), 15)
        assert server.proc.poll() is None
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def _raw_post(path: str, body: bytes, *, sent: int | None = None) -> bytes:
    """An HTTP/1.1 POST as bytes; ``sent`` cuts the body short of its Content-Length."""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-m\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body[:sent]


async def _served(aiohttp_server, make_config):
    """The app served as ``sidecar serve`` serves it: a leaving client cancels its handler."""
    app = create_app(make_config({"general_settings": {"master_key": "sk-m"}}))
    return await aiohttp_server(app)  # (aiohttp's TestServer cancels handlers, as serve does)


async def _wait_disconnected(server) -> None:
    await until(lambda: not server.runner.server.connections, what="the server to drop the client's connection")


async def test_a_management_write_completes_when_its_client_leaves(aiohttp_server, make_config, monkeypatch):
    """Once the handler has the request, the write finishes even though the client left
    (and aiohttp cancelled the handler) before the answer."""
    entered, release = asyncio.Event(), asyncio.Event()
    real_changing = management.changing

    @contextlib.asynccontextmanager
    async def held(app):
        entered.set()
        await release.wait()
        async with real_changing(app):
            yield

    monkeypatch.setattr(management, "changing", held)
    server = await _served(aiohttp_server, make_config)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    body = b'{"model_name": "kept", "litellm_params": {"model": "mock/x"}, "model_info": {"id": "k1"}}'
    writer.write(_raw_post("/model/new", body))
    await asyncio.wait_for(entered.wait(), 5)
    writer.close()  # gone before any answer
    await _wait_disconnected(server)
    release.set()
    await until(lambda: server.app[keys.REGISTRY].get("k1") is not None, what="the write to finish")
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-m"}) as session:
        async with session.get(server.make_url("/model/info?litellm_model_id=k1")) as resp:
            assert resp.status == 200
        async with session.post(server.make_url("/v1/chat/completions"), json={
                "model": "kept", "messages": [{"role": "user", "content": "hi"}]}) as chat:
            assert chat.status == 200


async def test_a_client_leaving_mid_body_changes_nothing(aiohttp_server, make_config, caplog, monkeypatch):
    """A request whose body never fully arrived was never acknowledged: nothing is stored,
    nothing is logged as an error, and the server goes on serving."""
    reading = asyncio.Event()
    real_read = management.read_json_object

    async def read(request):
        reading.set()
        return await real_read(request)

    monkeypatch.setattr(management, "read_json_object", read)
    server = await _served(aiohttp_server, make_config)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    body = b'{"model_name": "half", "litellm_params": {"model": "mock/x"}, "model_info": {"id": "h1"}}'
    writer.write(_raw_post("/model/new", body, sent=20))
    await writer.drain()
    await asyncio.wait_for(reading.wait(), 5)  # the handler waits for the rest of the body
    writer.close()
    await _wait_disconnected(server)
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-m"}) as session:
        async with session.get(server.make_url("/model/info?litellm_model_id=h1")) as resp:
            assert resp.status == 404
        async with session.get(server.make_url("/health/readiness")) as ready:
            assert ready.status == 200
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
