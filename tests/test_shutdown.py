"""Graceful shutdown of ``sidecar serve``, as a sidecar in a pod gets it: on SIGTERM or SIGINT it
stops accepting, lets in-flight requests and streams finish, then exits 0."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp
import pytest

from gateway_helpers import Server, parse_sse, write_config
from openai_spec import assert_valid

WORDS = "alpha bravo charlie delta echo foxtrot"
GRACE = 10


def slow_config(tmp_path, grace: float = GRACE, delay: float = 0.2):
    return write_config(tmp_path / "slow.yaml", {
        "model_list": [{"model_name": "slow", "litellm_params": {"model": "mock/slow", "mock_delay": delay}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db",
                             "graceful_shutdown_seconds": grace},
    })


async def refused_while_alive(server: Server, timeout: float = 10) -> bool:
    """Poll new connections until one is refused; True if that happened while the process lived."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        alive = server.proc.poll() is None
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), 2)
        except (ConnectionRefusedError, OSError):
            return alive and server.proc.poll() is None  # (refused because it exited meanwhile: no)
        writer.close()
        await asyncio.sleep(0.01)
    return False


async def wait_exit(server: Server, timeout: float) -> int:
    return await asyncio.wait_for(asyncio.to_thread(server.proc.wait), timeout)


@pytest.mark.parametrize("workers", ["1", "2"], ids=["1 worker", "2 workers"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_stream_in_progress_completes(tmp_path, signum, workers):
    with Server(slow_config(tmp_path, delay=0.4), tmp_path, extra_args=("--workers", workers)) as server:
        await asyncio.to_thread(server.wait_ready)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            body = {"model": "slow", "messages": [{"role": "user", "content": WORDS}], "stream": True,
                    "stream_options": {"include_usage": True}}
            async with session.post(server.url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 30)
                assert first.startswith(b"data: {")
                server.proc.send_signal(signum)
                # within two seconds, while the stream has about three to go
                assert await refused_while_alive(server, timeout=2), "a new connection was accepted after the signal"
                rest = await asyncio.wait_for(resp.content.read(), 30)
        chunks, done = parse_sse(first + rest)
        assert done, "the stream did not end with [DONE]"
        for chunk in chunks:
            assert_valid(chunk, "CreateChatCompletionStreamResponse")
        text = "".join(c["delta"].get("content") or "" for chunk in chunks for c in chunk["choices"])
        assert text == f"Mock reply to: {WORDS}"
        assert chunks[-1]["usage"]["completion_tokens"] == len(text.split())
        assert await wait_exit(server, GRACE + 20) == 0
        output = server.output()
        assert "Traceback" not in output and "Unclosed" not in output, output


async def test_request_in_flight_completes(tmp_path):
    """A plain request the server is handling when the signal comes still gets its answer.

    It is sent whole on its own connection before a stream is opened on a second one; once the
    stream's first chunk arrives the server has long read the first request, whose own
    ``mock_delay`` keeps it waiting past the signal. (aiohttp ignores bytes that arrive after
    shutdown began, so a body still uploading at that moment cannot complete.)"""
    with Server(slow_config(tmp_path), tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        body = json.dumps({"model": "slow", "messages": [{"role": "user", "content": "plain one"}],
                           "mock_delay": 5}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                stream = {"model": "slow", "messages": [{"role": "user", "content": WORDS}], "stream": True}
                async with session.post(server.url + "/v1/chat/completions", json=stream) as resp:
                    first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 30)
                    server.proc.send_signal(signal.SIGTERM)
                    assert await refused_while_alive(server)
                    rest = await asyncio.wait_for(resp.content.read(), 30)
            raw = await asyncio.wait_for(reader.read(), 30)
        finally:
            writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        data = json.loads(payload)
        assert_valid(data, "CreateChatCompletionResponse")
        assert data["choices"][0]["message"]["content"] == "Mock reply to: plain one"
        chunks, done = parse_sse(first + rest)
        assert done
        assert "".join(c["delta"].get("content") or "" for ch in chunks for c in ch["choices"]) == \
            f"Mock reply to: {WORDS}"
        assert await wait_exit(server, GRACE + 20) == 0


async def test_grace_period_bounds_a_long_stream(tmp_path):
    """A stream longer than graceful_shutdown_seconds does not keep the process alive, and the
    client is told: a 503 error event, then [DONE], rather than a silent cut."""
    long_text = " ".join(f"w{i}" for i in range(200))  # 200 words x 0.2 s: far beyond the grace period
    with Server(slow_config(tmp_path, grace=3), tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            body = {"model": "slow", "messages": [{"role": "user", "content": long_text}], "stream": True}
            async with session.post(server.url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 30)
                server.proc.send_signal(signal.SIGTERM)
                assert await wait_exit(server, 3 + 20) == 0
                rest = await asyncio.wait_for(resp.content.read(), 10)
        payloads, done = parse_sse(rest)
        assert done, "the stream must end with data: [DONE]"
        error = payloads[-1]["error"]
        assert error["code"] == "shutting_down" and "shutting down" in error["message"]
        assert "w199" not in rest.decode(), "the stream cannot have finished: it was cut at the deadline"
