"""Bounded connections and file descriptors, over real sockets against `sidecar serve`:
idle and slowloris connections are closed, running out of descriptors is survived quietly,
and the upstream pool never opens more connections than configured."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import msgspec
from gateway_helpers import Server, until, write_config

HEAD_TIMEOUT = 1.0


def config(tmp_path, **general):
    return write_config(tmp_path / "limits.yaml", {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", **general},
    })


async def answers(url: str, timeout: float = 2) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as resp:
                return resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    """True once the server closed the connection (EOF or reset) within ``timeout``."""
    try:
        return await asyncio.wait_for(reader.read(1), timeout) == b""
    except ConnectionError:
        return True
    except asyncio.TimeoutError:
        return False


async def test_idle_connections_beyond_the_descriptor_limit_are_survived(tmp_path):
    cfg = config(tmp_path, request_head_timeout=HEAD_TIMEOUT)
    with Server(cfg, tmp_path, prefix=("prlimit", "--nofile=256:256")) as server:
        await asyncio.to_thread(server.wait_ready)
        assert "file descriptor limit: 256" in server.output()
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(300)]
        # more connections than descriptors: accepting stops, and says so
        await until(lambda: "out of file descriptors" in server.output(), 20, "the out-of-descriptors line")
        # the head timeout frees descriptors; accepting resumes by itself and the server answers
        deadline = time.monotonic() + 60
        while not await answers(server.url + "/health/liveliness"):
            assert time.monotonic() < deadline, server.output()[-2000:]
        for reader, _ in idle:  # every idle connection was closed by the server, none held forever
            assert await closed_by_server(reader, 30)
        for _, writer in idle:
            writer.close()
        assert len(server.output().encode()) < 50_000
        assert "Traceback" not in server.output()


async def test_a_slowloris_and_an_idle_keepalive_connection_are_closed(tmp_path):
    cfg = config(tmp_path, request_head_timeout=HEAD_TIMEOUT, keepalive_timeout=1)
    with Server(cfg, tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        # slowloris: a byte of the head at a time, never the end of it
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        closed = False
        for byte in b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            writer.write(bytes([byte]))
            if await closed_by_server(reader, 0.2):
                closed = True
                break
        assert closed, "the slow head was never cut off"
        # (the server's clock starts at accept, a moment before ours: allow that moment)
        assert HEAD_TIMEOUT - 0.1 <= time.monotonic() - started < HEAD_TIMEOUT + 10
        writer.close()
        # keep-alive: one complete request, then silence
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        assert await closed_by_server(reader, 15)
        writer.close()


class CountingUpstream:
    """An OpenAI-style upstream on raw sockets that answers each chat slowly and records its peak
    number of concurrent connections."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = 0
        self.peak = 0
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.connection, "127.0.0.1", 0, backlog=1024)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                await asyncio.sleep(self.delay)
                body = msgspec.json.encode({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "slow",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def test_upstream_connections_stay_within_the_configured_bound(tmp_path):
    upstream = CountingUpstream(delay=0.1)
    base_url = await upstream.start()
    cfg = write_config(tmp_path / "pool.yaml", {
        "model_list": [{"model_name": "slow", "litellm_params": {
            "model": "openai/slow", "api_base": base_url, "api_key": "sk-pool-test-000000", "timeout": 120}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", "max_upstream_connections": 10},
    })
    with Server(cfg, tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            async def one() -> int:
                async with session.post(server.url + "/v1/chat/completions", json=body) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one() for _ in range(300)))
        assert statuses == [200] * 300
        assert upstream.requests == 300
        assert 2 <= upstream.peak <= 10, upstream.peak  # the requests beyond waited for a free connection
        assert upstream.open <= 10
    upstream.server.close()


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(tmp_path):
    cfg = config(tmp_path)
    with Server(cfg, tmp_path, prefix=("prlimit", "--nofile=300:4096")) as server:
        server.wait_ready()
        assert "file descriptor limit: 4096" in server.output()
        assert "garbage collector thresholds: 5000, 10, 10" in server.output()
        frozen = re.search(r"garbage collector: (\d+) start-up objects frozen", server.output())
        assert frozen is not None and int(frozen.group(1)) > 10_000, server.output()
        limits = open(f"/proc/{server.proc.pid}/limits").read()
        assert next(line for line in limits.splitlines() if "open files" in line).split()[3:5] == ["4096", "4096"]

