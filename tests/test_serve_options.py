"""`sidecar serve` logging options: --access-log and --log-level."""

from __future__ import annotations

import asyncio

import aiohttp
from gateway_helpers import Server, write_config


def config(tmp_path):
    return write_config(tmp_path / "c.yaml", {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db"}})


async def serve_and_ask(tmp_path, *args: str, expect: str | None = None) -> str:
    """The server's output after one chat request; waits (up to 10 s) for ``expect`` when given,
    else 0.2 s for anything the request would log."""
    server = Server(config(tmp_path), tmp_path, extra_args=args)
    try:
        await asyncio.to_thread(server.wait_ready)
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + "/v1/chat/completions", json={
                    "model": "m", "messages": [{"role": "user", "content": "hi"}]}) as resp:
                assert resp.status == 200
        for _ in range(50 if expect else 1):
            await asyncio.sleep(0.2)
            if expect is None or expect in server.output():
                break
        return server.output()
    finally:
        server.stop()


async def test_access_log_is_off_by_default_and_on_when_asked(tmp_path):
    quiet = await serve_and_ask(tmp_path)
    assert "POST /v1/chat/completions" not in quiet
    loud = await serve_and_ask(tmp_path, "--access-log", expect="POST /v1/chat/completions")
    assert "POST /v1/chat/completions" in loud


async def test_log_level_warning_hides_info_lines(tmp_path):
    output = await serve_and_ask(tmp_path, "--log-level", "WARNING")
    assert "llm-sidecar serving" not in output          # an INFO line
    assert "no general_settings.master_key" in output   # a WARNING line
