"""The core's helpers for a provider with its own wire format (sidecar/translate.py):
``translate_stream`` drives a plugin's per-stream state over an upstream's reads; ``text_inputs``,
``message_text`` and ``tool_arguments`` read OpenAI's requests."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import msgspec
import pytest

from sidecar import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    ProviderError,
    message_text,
    text_inputs,
    tool_arguments,
    translate_stream,
)


class Event(msgspec.Struct):
    """A made-up upstream's event: words to say, its end, or a failure."""

    say: str = ""
    end: bool = False
    fail: str = ""


_events = msgspec.json.Decoder(list[Event])


class Echo:
    """A StreamTranslator: one chunk per word, an end chunk, a 429 for a ``fail`` event."""

    def __init__(self) -> None:
        self.done = False
        self.seen: list[str] = []

    def chunks(self, event: Event) -> list[ChatCompletionChunk]:
        self.seen.append(event.say or ("end" if event.end else event.fail))
        if event.fail:
            raise ProviderError(429, f"echo upstream answered 429: {event.fail}")
        if event.end:
            self.done = True
            return [_chunk(Delta(), "stop")]
        return [_chunk(Delta(content=event.say))] if event.say else []

    def usage(self) -> list[ChatCompletionChunk]:
        return [ChatCompletionChunk(id="c", model="m", choices=[])]


def _chunk(delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk(id="c", model="m", choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)])


class Reads:
    """An upstream's reads, as ``iter_sse_payloads`` would give them, recording how far they were
    read and whether they were closed (which releases the connection)."""

    def __init__(self, *reads: list[bytes]) -> None:
        self.reads = reads
        self.pulled = 0
        self.closed = False

    async def __call__(self) -> AsyncGenerator[list[bytes], None]:
        try:
            for read in self.reads:
                self.pulled += 1
                yield read
        finally:
            self.closed = True


def _texts(batches: list[list[ChatCompletionChunk]]) -> list[str | None]:
    return [c.choices[0].delta.content if c.choices[0].finish_reason is None else c.choices[0].finish_reason
            for batch in batches for c in batch]


async def _run(reads: Reads, state: Echo, **kw) -> tuple[list[list[ChatCompletionChunk]], ProviderError | None]:
    got: list[list[ChatCompletionChunk]] = []
    try:
        async for batch in translate_stream(reads(), kw.pop("decode", _events), state, "echo", "its end event", **kw):
            got.append(batch)
    except ProviderError as err:
        return got, err
    return got, None


async def test_each_read_becomes_one_list_of_chunks_and_the_end_event_ends_it():
    reads = Reads([b'{"say": "Hello"}', b'{"say": ""}', b'{"say": " there"}'], [b'{"ping": 1}'], [b'{"end": true}'])
    got, err = await _run(reads, Echo())
    assert err is None
    assert [len(batch) for batch in got] == [2, 1]  # (a read that makes no chunk sends nothing)
    assert _texts(got) == ["Hello", " there", "stop"]


async def test_the_chunks_before_a_failure_still_come_out_then_the_error():
    state = Echo()
    reads = Reads([b'{"say": "Hel"}', b'{"say": "lo"}', b'{"fail": "slow down"}', b'{"say": "never"}'],
                  [b'{"say": "never"}'])
    got, err = await _run(reads, state)
    assert _texts(got) == ["Hel", "lo"]
    assert err is not None and err.status == 429 and "slow down" in err.message
    assert state.seen == ["Hel", "lo", "slow down"]  # nothing after the failure was translated
    assert reads.closed and reads.pulled == 1


async def test_a_stream_cut_before_its_end_event_is_a_502_naming_the_provider():
    reads = Reads([b'{"say": "Hello"}'])
    got, err = await _run(reads, Echo())
    assert _texts(got) == ["Hello"]
    assert err is not None and (err.status, err.code, err.kind) == (502, "upstream_disconnected", "server")
    assert err.message == "echo upstream ended the stream before its end event"
    assert reads.closed


async def test_the_end_event_stops_reading_mid_read_and_closes_the_reads():
    state = Echo()
    reads = Reads([b'{"say": "Hi"}', b'{"end": true}', b'{"say": "after the end"}'], [b'{"say": "never read"}'])
    got, err = await _run(reads, state)
    assert err is None and _texts(got) == ["Hi", "stop"]
    assert state.seen == ["Hi", "end"]
    assert reads.pulled == 1 and reads.closed


async def test_read_past_end_reads_the_whole_body_then_sends_the_tail():
    state = Echo()
    reads = Reads([b'{"say": "Hi"}', b'{"end": true}', b'{"say": "late"}'], [b'{"say": "later"}'])
    got, err = await _run(reads, state, read_past_end=True, tail=state.usage)
    assert err is None and reads.pulled == 2
    assert _texts(got[:-1]) == ["Hi", "stop", "late", "later"]
    assert got[-1][0].choices == []  # the tail's chunk comes last


async def test_read_past_end_still_needs_the_end_event_and_sends_no_tail_without_it():
    state = Echo()
    got, err = await _run(Reads([b'{"say": "Hi"}']), state, read_past_end=True, tail=state.usage)
    assert _texts(got) == ["Hi"] and err is not None and err.code == "upstream_disconnected"


async def test_an_event_that_does_not_decode_is_a_502():
    reads = Reads([b'{"say": "Hi"}', b'{"say": '])
    got, err = await _run(reads, Echo())
    assert got == [] and err is not None
    assert (err.status, err.code) == (502, "bad_upstream_response") and err.message.startswith("echo upstream sent")
    assert reads.closed


async def test_a_function_decodes_a_framing_of_the_plugins_own():
    def decode(read: list[bytes]) -> list[Event]:  # e.g. frames whose type is outside the payload
        return [Event(say=part.decode()) if part != b"END" else Event(end=True) for part in read]

    got, err = await _run(Reads([b"a", b"b"], [b"END"]), Echo(), decode=decode)
    assert err is None and _texts(got) == ["a", "b", "stop"]


# ---------------------------------------------------------------- text_inputs


def test_text_inputs_reads_a_string_or_strings():
    assert text_inputs({"input": "one"}, "echo") == ["one"]
    sent = ["one", "two"]
    got = text_inputs({"input": sent}, "echo")
    assert got == sent and got is not sent  # (a copy: the request is reused for retries)


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]])
def test_text_inputs_refuses_token_arrays_naming_input(tokens):
    with pytest.raises(ProviderError) as caught:
        text_inputs({"input": tokens}, "echo")
    err = caught.value
    assert (err.status, err.param, err.code, err.kind) == (400, "input", "invalid_input", "bad_request")
    assert err.message.startswith("echo embeds text only")


# ---------------------------------------------------------------- message_text, tool_arguments


def test_message_text_joins_the_text_parts_and_skips_the_rest():
    assert message_text("plain") == "plain"
    assert message_text([{"type": "text", "text": "Say "}, {"type": "image_url", "image_url": {"url": "data:,"}},
                         {"type": "text", "text": "hi"}, "stray"]) == "Say hi"
    assert message_text(None) == ""


@pytest.mark.parametrize(("function", "expected"), [
    ({"name": "f", "arguments": '{"location": "Paris"}'}, {"location": "Paris"}),
    ({"name": "f", "arguments": {"already": "decoded"}}, {"already": "decoded"}),
    ({"name": "f", "arguments": ""}, {}),
    ({"name": "f"}, {}),
])
def test_tool_arguments_are_decoded(function, expected):
    assert tool_arguments({"id": "call_1", "type": "function", "function": function}) == expected


@pytest.mark.parametrize(("where", "starts"), [(None, "a tool call's"), ("messages[1]", "messages[1]: a tool call's")])
def test_tool_arguments_that_are_not_json_are_a_400_naming_messages(where, starts):
    with pytest.raises(ProviderError) as caught:
        tool_arguments({"function": {"name": "f", "arguments": "{Paris"}}, where)
    err = caught.value
    assert (err.status, err.param, err.code, err.kind) == (400, "messages", "invalid_tool_arguments", "bad_request")
    assert err.message.startswith(starts) and "not valid JSON" in err.message
