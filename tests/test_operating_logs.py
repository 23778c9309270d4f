"""What `sidecar serve` tells an operator: the port actually bound (by one process or by
workers), and a stop signal (SIGTERM or SIGINT) with what is in flight and when the last request
finished."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import aiohttp
import pytest
from fake_upstreams import refused_base_url
from gateway_helpers import Server, answers, until, write_config


def config(tmp_path):
    return write_config(tmp_path / "ops.yaml", {
        "model_list": [{"model_name": "slow", "litellm_params": {"model": "mock/slow", "mock_delay": 0.3}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", "graceful_shutdown_seconds": 20},
    })


async def port_bound(server: Server, line: str) -> int:
    """The port a ``sidecar serve --port 0`` logged, in its ``line`` (a regex with one group)."""
    await until(lambda: re.search(line, server.output()), 30, f"a line {line!r}")
    port = int(re.search(line, server.output()).group(1))
    assert port != 0
    return port


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda signum: signum.name)
async def test_port_0_logs_the_port_bound_and_a_stop_logs_what_was_in_flight(tmp_path, signum):
    name = signum.name
    with Server(config(tmp_path), tmp_path, extra_args=("--port", "0")) as server:  # (the last --port wins)
        port = await port_bound(server, r"listening on http://127\.0\.0\.1:(\d+)")
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "one two three four"}]}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                assert (await resp.content.readuntil(b"\n\n")).startswith(b"data: {")  # in flight now
                server.proc.send_signal(signum)
                await until(lambda: f"{name}: stopping" in server.output(), 10, "the signal's line")
                assert f"{name}: stopping; 1 requests in flight (1 streams)" in server.output()
                rest = await resp.read()
                assert rest.rstrip().endswith(b"data: [DONE]")
        assert await asyncio.to_thread(server.proc.wait, 30) == 0
        output = server.output()
        assert re.search(r"the last request in flight finished after \d+\.\d s", output), output
        assert output.index(f"{name}: stopping") < output.index("the last request in flight finished")
        assert output.rstrip().endswith("stopped")


async def test_port_0_with_workers_logs_the_port_they_listen_on(tmp_path):
    with Server(config(tmp_path), tmp_path, extra_args=("--port", "0", "--workers", "2")) as server:
        port = await port_bound(server, r"workers listen on port (\d+)")
        deadline = time.monotonic() + 30  # (the workers start after the line)
        while not await answers(f"http://127.0.0.1:{port}/health/liveliness"):
            assert time.monotonic() < deadline, server.output()[-2000:]
            await asyncio.sleep(0.1)
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.proc.wait, 30) == 0


async def test_json_log_lines_carry_the_call_id(make_client, openai_fake):
    import io
    import logging

    import msgspec
    from openai_helpers import dep, post, user

    from sidecar.logs import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sidecar")
    logger.addHandler(handler)
    try:
        client = await make_client({"model_list": [dep("g", "openai/error-503", openai_fake.base_url)]})
        status, _, headers = await post(client, "/v1/chat/completions", {"model": "g", "messages": user("hi")})
    finally:
        logger.removeHandler(handler)
    assert status == 502  # (an upstream 503 is a 502 to the client)
    lines = [msgspec.json.decode(line) for line in out.getvalue().splitlines()]
    failure = next(line for line in lines if "failed: 503" in line["message"])
    assert failure["call_id"] == headers["x-litellm-call-id"]
    assert failure["level"] == "WARNING" and failure["logger"] == "sidecar"


def test_calls_tag_log_lines_only_once_json_logs_exist(monkeypatch):
    """Setting the call id costs every request; only the JSON formatter reads it."""
    import contextvars

    from sidecar.logs import CALL_ID, CallTagging, JsonFormatter, tag_call

    monkeypatch.setattr(CallTagging, "on", False)
    ctx = contextvars.Context()
    ctx.run(tag_call, "call-1")
    assert ctx.get(CALL_ID) is None  # text logs: nothing set
    JsonFormatter()
    assert CallTagging.on
    ctx.run(tag_call, "call-2")
    assert ctx.get(CALL_ID) == "call-2"


async def test_an_upstream_failing_again_and_again_is_logged_once_per_interval(tmp_path):
    """20 calls to an upstream that refuses connections, each answered 502, make one warning
    (with the first call's id), not 20: the call id is no part of what makes lines repeats."""
    path = write_config(tmp_path / "refused.yaml", {
        "model_list": [{"model_name": "down", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": refused_base_url(), "api_key": "k"}}],
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db"},
    })
    with Server(path, tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        body = {"model": "down", "messages": [{"role": "user", "content": "hi"}]}
        call_ids = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for _ in range(20):
                async with session.post(server.url + "/v1/chat/completions", json=body) as resp:
                    assert resp.status == 502, await resp.text()
                    call_ids.append(resp.headers["x-litellm-call-id"])
        await until(lambda: "failed: 502" in server.output(), 10, "the upstream failure's warning")
        await asyncio.sleep(0.2)  # (any further line would be written by now)
        failures = [line for line in server.output().splitlines() if "failed: 502" in line]
    assert len(failures) == 1, "\n".join(failures)
    assert "WARNING sidecar: deployment" in failures[0]
    assert failures[0].endswith(f"[call {call_ids[0]}]")  # (the text line still names its call)
    assert len(set(call_ids)) == 20
