"""Checks of what the gateway answers: SSE streams, OpenAI's error envelope, both against
OpenAI's spec (:mod:`sidecar.testing.spec`)."""

from __future__ import annotations

import json
from typing import Any

from sidecar.testing.spec import assert_valid

__all__ = ["assert_envelope", "assert_error", "assert_valid_stream", "parse_sse", "stream_ending_in_error", "stream_text",
           "tool_calls_of"]


def parse_sse(raw: bytes | str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON payloads of an SSE body, and whether its last event was ``data: [DONE]``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    events = [e for e in text.replace("\r\n", "\n").split("\n\n") if e.strip()]
    payloads: list[dict[str, Any]] = []
    done = False
    for i, event in enumerate(events):
        data_lines = [line[5:].strip() for line in event.split("\n") if line.startswith("data:")]
        assert data_lines, f"SSE event without data: {event!r}"
        data = "\n".join(data_lines)
        if data == "[DONE]":
            assert i == len(events) - 1, "[DONE] must be the last event"
            done = True
        else:
            payloads.append(json.loads(data))
    return payloads, done


def assert_valid_stream(raw: bytes | str) -> list[dict[str, Any]]:
    """A complete chat stream: every chunk passes OpenAI's chunk schema, none is an error, a
    chunk gives a ``finish_reason`` (only usage chunks follow the last one), and the stream ends
    with ``data: [DONE]``. Returns the chunks."""
    chunks, done = parse_sse(raw)
    assert done, "stream did not end with data: [DONE]"
    assert chunks, "stream had no chunks"
    for chunk in chunks:
        assert "error" not in chunk, chunk
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    finished = [i for i, c in enumerate(chunks) if any(ch.get("finish_reason") for ch in c["choices"])]
    assert finished, "no chunk of the stream gave a finish_reason"
    after = chunks[finished[-1] + 1:]
    assert all(not c["choices"] for c in after), f"chunks with choices after the finish_reason: {after}"
    return chunks


def stream_ending_in_error(raw: bytes | str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A stream that failed after it began: chunks valid by OpenAI's chunk schema, then one error
    event in OpenAI's envelope, then ``data: [DONE]``. Returns the chunks and the inner error."""
    payloads, done = parse_sse(raw)
    assert done, "the stream did not end with data: [DONE]"
    assert payloads, "the stream had no event before [DONE]"
    *chunks, last = payloads
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    assert "error" in last, f"the stream did not end with an error event: {last}"
    return chunks, assert_envelope(last)


def stream_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    """The content of choice ``index`` of a stream, joined."""
    return "".join(
        c["delta"].get("content") or "" for chunk in chunks for c in chunk["choices"] if c["index"] == index
    )


def tool_calls_of(chunks: list[dict[str, Any]], index: int = 0) -> list[dict[str, Any]]:
    """The tool calls of choice ``index`` of a stream, put together from their deltas as a client
    does (by each delta's ``index``: ``id``, ``type`` and name from the first, arguments joined)."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            if choice["index"] != index:
                continue
            for delta in (choice.get("delta") or {}).get("tool_calls") or ():
                call = calls.setdefault(delta["index"], {"id": None, "type": None,
                                                         "function": {"name": None, "arguments": ""}})
                call["id"] = call["id"] or delta.get("id")
                call["type"] = call["type"] or delta.get("type")
                fn = delta.get("function") or {}
                call["function"]["name"] = call["function"]["name"] or fn.get("name")
                call["function"]["arguments"] += fn.get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


def assert_envelope(body: Any) -> dict[str, Any]:
    """``body`` is OpenAI's error envelope (exactly ``message``, ``type``, ``param``, ``code``, a
    message and a type given), valid by the spec; returns the inner error object."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    assert_valid(body, "ErrorResponse")
    return err


async def assert_error(resp: Any, status: int, *, param: str | None = None, code: str | None = None,
                       mentions: tuple[str, ...] = ()) -> dict[str, Any]:
    """``resp`` (an aiohttp response) is ``status`` with OpenAI's error envelope, as JSON, with no
    traceback; returns the inner error object."""
    text = await resp.text()
    assert resp.status == status, f"expected {status}, got {resp.status}: {text}"
    assert resp.content_type == "application/json", resp.content_type
    assert "Traceback" not in text
    err = assert_envelope(json.loads(text))
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    for word in mentions:
        assert word in err["message"], (word, err)
    return err
