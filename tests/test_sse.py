"""SSE relaying: events ready together leave in one write; big streams keep backpressure."""

from __future__ import annotations

import msgspec
from aiohttp import web

from sidecar import Provider, hookimpl
from sidecar.plugins import get_plugin_manager
from sidecar.wire import ChatCompletionChunk, ChunkChoice, Delta


class BurstProvider(Provider):
    """Yields ``count`` chunks of ``size`` characters without ever waiting, like an upstream
    whose events all arrived in one read."""

    name = "burst"
    capabilities = frozenset({"chat"})

    def supported_openai_params(self, model: str) -> list[str]:
        return ["stream"]

    async def chat(self, call):
        count, size = (int(x) for x in call.model.split("x"))

        async def chunks():
            for i in range(count):
                yield ChatCompletionChunk(id="c", model=call.model,
                                          choices=[ChunkChoice(index=0, delta=Delta(content=str(i % 10) * size))])

        return chunks()


class BurstPlugin:
    @hookimpl
    def sidecar_providers(self):
        return [BurstProvider()]


def manager():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(BurstPlugin())
    return pm


def config(model: str) -> dict:
    return {"model_list": [{"model_name": "b", "litellm_params": {"model": f"burst/{model}"}}]}


async def read_events(resp) -> list[bytes]:
    body = await resp.read()
    return [e for e in body.split(b"\n\n") if e]


async def test_ready_events_leave_in_few_writes(make_client, monkeypatch):
    writes = []
    original = web.StreamResponse.write

    async def counting_write(self, data):
        writes.append(len(data))
        return await original(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", counting_write)
    client = await make_client(config("20x5"), pm=manager())
    resp = await client.post("/v1/chat/completions", json={"model": "b", "stream": True,
                                                          "messages": [{"role": "user", "content": "x"}]})
    events = await read_events(resp)
    assert len(events) == 21 and events[-1] == b"data: [DONE]"
    contents = [msgspec.json.decode(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert contents == [str(i % 10) * 5 for i in range(20)]
    assert len(writes) <= 2, f"20 ready events took {len(writes)} writes"


async def test_a_stream_larger_than_the_buffer_arrives_whole_and_in_order(make_client):
    client = await make_client(config("40x10000"), pm=manager())  # 400 kB: several 64 kB flushes
    resp = await client.post("/v1/chat/completions", json={"model": "b", "stream": True,
                                                          "messages": [{"role": "user", "content": "x"}]})
    events = await read_events(resp)
    assert events[-1] == b"data: [DONE]"
    contents = [msgspec.json.decode(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert contents == [str(i % 10) * 10000 for i in range(40)]
