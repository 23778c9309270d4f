"""SSE relaying: events ready together leave in one write (with the headers when they are the
first); providers may hand over batches; big streams keep backpressure."""

from __future__ import annotations

import msgspec
from aiohttp import http_writer, web_protocol

from sidecar import Provider, hookimpl
from sidecar.plugins import get_plugin_manager
from sidecar.wire import ChatCompletionChunk, ChunkChoice, Delta


class BurstProvider(Provider):
    """Yields ``count`` chunks of ``size`` characters without ever waiting, like an upstream
    whose events all arrived in one read."""

    name = "burst"
    capabilities = frozenset({"chat"})

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        return ["stream"]

    async def chat(self, call):
        count, size = (int(x) for x in call.model.split("x"))

        async def chunks():
            for i in range(count):
                yield chunk(call.model, str(i % 10) * size)

        return chunks()


def chunk(model: str, content: str) -> ChatCompletionChunk:
    return ChatCompletionChunk(id="c", model=model, choices=[ChunkChoice(index=0, delta=Delta(content=content))])


class BatchProvider(BurstProvider):
    """Yields lists, as a provider handing over the chunks of one upstream read does: Structs and
    already-encoded bytes mixed (some pretty-printed, over several lines), and an empty list."""

    name = "batch"

    async def chat(self, call):
        async def batches():
            yield [chunk(call.model, "a"), msgspec.json.encode(chunk(call.model, "b"))]
            yield []
            yield [chunk(call.model, "c"), msgspec.json.format(msgspec.json.encode(chunk(call.model, "d")), indent=2)]
            yield msgspec.json.format(msgspec.json.encode(chunk(call.model, "e")), indent=2) + b"\n"

        return batches()


class BurstPlugin:
    @hookimpl
    def sidecar_providers(self):
        return [BurstProvider(), BatchProvider()]


def manager():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(BurstPlugin())
    return pm


def config(model: str, provider: str = "burst") -> dict:
    return {"model_list": [{"model_name": "b", "litellm_params": {"model": f"{provider}/{model}"}}]}


async def post_stream(client):
    return await client.post("/v1/chat/completions", json={"model": "b", "stream": True,
                                                          "messages": [{"role": "user", "content": "x"}]})


async def read_events(resp) -> list[bytes]:
    body = await resp.read()
    return [e for e in body.split(b"\n\n") if e]


async def test_a_stream_larger_than_the_buffer_arrives_whole_and_in_order(make_client):
    client = await make_client(config("40x10000"), pm=manager())  # 400 kB: several 64 kB flushes
    resp = await client.post("/v1/chat/completions", json={"model": "b", "stream": True,
                                                          "messages": [{"role": "user", "content": "x"}]})
    events = await read_events(resp)
    assert events[-1] == b"data: [DONE]"
    contents = [msgspec.json.decode(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert contents == [str(i % 10) * 10000 for i in range(40)]


async def test_a_burst_leaves_with_its_headers_and_done_in_one_socket_write(make_client, monkeypatch):
    server_writes = []
    write, writelines = http_writer.StreamWriter._write, http_writer.StreamWriter._writelines

    def note(writer, data):
        if isinstance(writer._protocol, web_protocol.RequestHandler):  # the gateway's side only
            server_writes.append(data)

    monkeypatch.setattr(http_writer.StreamWriter, "_write", lambda self, c: (note(self, c), write(self, c))[1])
    monkeypatch.setattr(http_writer.StreamWriter, "_writelines",
                        lambda self, cs: (note(self, b"".join(cs)), writelines(self, cs))[1])
    client = await make_client(config("20x5"), pm=manager())
    resp = await post_stream(client)
    events = await read_events(resp)
    assert len(events) == 21 and events[-1] == b"data: [DONE]"
    contents = [msgspec.json.decode(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert contents == [str(i % 10) * 5 for i in range(20)]
    assert len(server_writes) == 1, [len(w) for w in server_writes]
    assert server_writes[0].startswith(b"HTTP/1.1 200") and server_writes[0].endswith(b"0\r\n\r\n")


async def test_a_provider_may_yield_batches_of_chunks_and_bytes(make_client):
    client = await make_client(config("m", provider="batch"), pm=manager())
    resp = await post_stream(client)
    events = await read_events(resp)
    assert events[-1] == b"data: [DONE]"
    assert [msgspec.json.decode(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]] == list("abcde")


async def test_a_stream_with_no_chunk_is_just_done(make_client):
    client = await make_client(config("0x5"), pm=manager())
    resp = await post_stream(client)
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    assert await read_events(resp) == [b"data: [DONE]"]
