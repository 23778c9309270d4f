"""Bounded connections and file descriptors, over real sockets against `sidecar serve`:
idle and slowloris connections are closed, running out of descriptors is survived quietly (on
asyncio's loop and on uvloop, ``$SIDECAR_EVENT_LOOP``), and the upstream pool never opens more
connections than configured; a request that waits for one too long times out."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import msgspec
import pytest
from gateway_helpers import Server, answers, assert_error, run_sidecar, until, write_config

HEAD_TIMEOUT = 1.0


def config(tmp_path, **general):
    return write_config(tmp_path / "limits.yaml", {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", **general},
    })


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    """True once the server closed the connection (EOF or reset) within ``timeout``."""
    try:
        return await asyncio.wait_for(reader.read(1), timeout) == b""
    except ConnectionError:
        return True
    except asyncio.TimeoutError:
        return False


async def lifetime(reader: asyncio.StreamReader) -> float:
    """Seconds from now until the server closes the connection (at most 60)."""
    started = time.monotonic()
    assert await closed_by_server(reader, 60), "an idle connection held for a minute"
    return time.monotonic() - started


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_idle_connections_beyond_the_descriptor_limit_are_survived(tmp_path, event_loop):
    """On asyncio's loop accepting fails and backs off; on uvloop, whose accept does neither (it
    would close waiting connections unlogged, or spin), the sidecar stops listening short of the
    limit. Either way the connections beyond wait in the backlog: each is closed by the head
    timeout, none at once."""
    cfg = config(tmp_path, request_head_timeout=HEAD_TIMEOUT)
    with Server(cfg, tmp_path, env={"SIDECAR_EVENT_LOOP": event_loop}, prefix=("prlimit", "--nofile=256:256")) as server:
        await asyncio.to_thread(server.wait_ready)
        assert "file descriptor limit: 256" in server.output()
        assert f":{server.port} ({event_loop})" in server.output()
        idle, lifetimes = [], []
        for _ in range(300):
            idle.append(await asyncio.open_connection("127.0.0.1", server.port))
            lifetimes.append(asyncio.ensure_future(lifetime(idle[-1][0])))
        # more connections than descriptors: accepting stops, and says so
        await until(lambda: "out of file descriptors" in server.output(), 20, "the out-of-descriptors line")
        # the head timeout frees descriptors; accepting resumes by itself and the server answers
        deadline = time.monotonic() + 60
        while not await answers(server.url + "/health/liveliness"):
            assert time.monotonic() < deadline, server.output()[-2000:]
        # every idle connection was closed by the server, none held forever, and by the head
        # timeout, none at once (none accepted only to be closed)
        assert min(await asyncio.gather(*lifetimes)) >= HEAD_TIMEOUT - 0.1
        for _, writer in idle:
            writer.close()
        assert len(server.output().encode()) < 50_000
        assert "Traceback" not in server.output()


@pytest.mark.parametrize("value, says", [
    ("fast", "SIDECAR_EVENT_LOOP='fast' is not an event loop: use auto, asyncio or uvloop"),
    ("uvloop", "SIDECAR_EVENT_LOOP=uvloop, but uvloop cannot be imported (no uvloop here): install it"),
])
def test_an_event_loop_that_cannot_be_had_is_one_start_up_line(tmp_path, value, says):
    hidden = tmp_path / "path" / "uvloop"  # (an uvloop that cannot be imported, ahead of the venv's)
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("no uvloop here")\n')
    result = run_sidecar("serve", "--config", str(config(tmp_path)), "--port", "0",
                         env={"SIDECAR_EVENT_LOOP": value, "PYTHONPATH": str(hidden.parent)})
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sidecar: {says}"), result.stderr


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


def slow_deployment(name: str, base_url: str, timeout: float) -> dict:
    return {"model_name": name, "litellm_params": {
        "model": "openai/slow", "api_base": base_url, "api_key": "sk-pool-test-000000", "timeout": timeout}}


@pytest.mark.parametrize("setting", ["max_upstream_connections", "max_upstream_connections_per_host"])
async def test_upstream_connections_stay_within_the_configured_bound(tmp_path, setting):
    upstream = CountingUpstream(delay=0.1)
    base_url = await upstream.start()
    cfg = write_config(tmp_path / "pool.yaml", {
        "model_list": [slow_deployment("slow", base_url, 120)],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", setting: 10},
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


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
async def test_a_request_waiting_too_long_for_an_upstream_connection_times_out(tmp_path, client):
    """With the one upstream connection held by a slow call, a call whose timeout is 1 s waits for
    it, never reaches the upstream, and is answered 504 with a timeout error after about 1 s."""
    upstream = CountingUpstream(delay=4)
    base_url = await upstream.start()
    cfg = write_config(tmp_path / "pool.yaml", {
        "model_list": [slow_deployment("slow", base_url, 60), slow_deployment("impatient", base_url, 1)],
        "router_settings": {"num_retries": 0},
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db", "max_upstream_connections": 1,
                             "upstream_http_client": client},
    })
    with Server(cfg, tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            def call(model: str):
                return session.post(server.url + "/v1/chat/completions",
                                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]})

            async def status(model: str) -> int:
                async with call(model) as resp:
                    await resp.read()
                    return resp.status

            slow = asyncio.ensure_future(status("slow"))
            await until(lambda: upstream.requests == 1, 10, "the slow call at the upstream")
            started = time.monotonic()
            async with call("impatient") as resp:
                await assert_error(resp, 504, code="timeout")
            assert 0.9 <= time.monotonic() - started < 3.5
            assert upstream.requests == 1  # (it never had a connection)
            assert await slow == 200
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

