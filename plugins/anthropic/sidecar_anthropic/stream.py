"""Anthropic's stream (SSE with ``event:`` lines and no ``[DONE]``) read as it arrives, and its
events (``message_start``, ``content_block_start``/``_delta``/``_stop``, ``message_delta``,
``message_stop``, ``ping``, ``error``) as OpenAI chunks.

Nothing is sent for ``message_start``: the first chunk (with ``role``) goes out with the first
content, so an ``error`` event that comes before any content fails the call before its first
chunk, and the router can retry it or fall back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from sidecar import ChatCompletionChunk, ChunkChoice, Delta, ProviderError, iter_sse_payloads
from sidecar_anthropic.answer import AnthropicUsage, Block, Message, finish_reason, new_id, usage_of
from sidecar_anthropic.convert import JSON_TOOL
from sidecar_anthropic.errors import ErrorInfo, error_of


class EventDelta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class Event(msgspec.Struct):
    """Any stream event: the fields of every type, absent ones None."""

    type: str = ""
    message: Message | None = None
    index: int = 0
    content_block: Block | None = None
    delta: EventDelta | None = None
    usage: AnthropicUsage | None = None
    error: ErrorInfo | None = None


_events = msgspec.json.Decoder(list[Event])


def decode_events(payloads: list[bytes], provider: str) -> list[Event]:
    """The events of one read, decoded in one call."""
    try:
        return _events.decode(b"[" + b",".join(payloads) + b"]")
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProviderError(502, f"{provider} upstream sent an event that is not valid: {exc}",
                            code="bad_upstream_response") from None


class StreamState:
    """One stream's translation: its id and model, the blocks open, the tool calls so far, the usage."""

    def __init__(self, model: str, json_mode: bool = False, provider: str = "anthropic") -> None:
        self.id = new_id()
        self.model = model
        self.json_mode = json_mode
        self.provider = provider
        self.started = False
        self.done = False
        self.tools = 0
        self.tool_index: dict[int, int] = {}  # block index -> OpenAI tool call index
        self.json_blocks: set[int] = set()  # blocks of the response_format tool: their input is content
        self.usage = AnthropicUsage()
        self.reasoning_chars = 0
        self.stop_reason: str | None = None

    def chunks(self, event: Event) -> list[ChatCompletionChunk]:
        """The chunks for one event (often none); an ``error`` event raises."""
        kind = event.type
        if kind == "content_block_delta" and event.delta is not None:
            return self._delta(event.index, event.delta)
        if kind == "content_block_start" and event.content_block is not None:
            return self._start(event.index, event.content_block)
        if kind == "message_start" and event.message is not None:
            self.id = event.message.id or self.id
            self.model = event.message.model or self.model
            self.usage = event.message.usage
            return []
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            self.done = True
            # (always: the core drops it for a client that did not ask, and counts its tokens)
            return [ChatCompletionChunk(id=self.id, model=self.model, choices=[],
                                        usage=usage_of(self.usage, self.reasoning_chars))]
        if kind == "error":
            raise error_of(event.error or ErrorInfo(), None, self.provider, event=True)
        return []  # ping, content_block_stop, and events of future versions

    def _start(self, index: int, block: Block) -> list[ChatCompletionChunk]:
        if block.type == "tool_use":
            if self.json_mode and block.name == JSON_TOOL:
                self.json_blocks.add(index)
                return []
            self.tool_index[index] = self.tools
            self.tools += 1
            call = {"index": self.tools - 1, "id": block.id or "", "type": "function",
                    "function": {"name": block.name or "", "arguments": ""}}
            return [self._chunk(Delta(tool_calls=[call]))]
        if block.type == "text" and block.text:
            return [self._chunk(Delta(content=block.text))]
        if block.type == "thinking" and block.thinking:
            self.reasoning_chars += len(block.thinking)
            return [self._chunk(Delta(reasoning_content=block.thinking))]
        if block.type == "redacted_thinking":
            return [self._chunk(Delta(thinking_blocks=[{"type": "redacted_thinking", "data": block.data or ""}]))]
        return []

    def _delta(self, index: int, delta: EventDelta) -> list[ChatCompletionChunk]:
        kind = delta.type
        if kind == "text_delta" and delta.text:
            return [self._chunk(Delta(content=delta.text))]
        if kind == "input_json_delta" and delta.partial_json:
            if index in self.json_blocks:
                return [self._chunk(Delta(content=delta.partial_json))]
            if index in self.tool_index:
                call = {"index": self.tool_index[index], "function": {"arguments": delta.partial_json}}
                return [self._chunk(Delta(tool_calls=[call]))]
        if kind == "thinking_delta" and delta.thinking:
            self.reasoning_chars += len(delta.thinking)
            return [self._chunk(Delta(reasoning_content=delta.thinking))]
        if kind == "signature_delta" and delta.signature:
            block = {"type": "thinking", "thinking": "", "signature": delta.signature}
            return [self._chunk(Delta(thinking_blocks=[block]))]
        return []  # citations_delta and deltas of future versions

    def _message_delta(self, event: Event) -> list[ChatCompletionChunk]:
        if event.usage is not None:  # cumulative counts; input counts only when given
            got = event.usage
            usage = self.usage
            for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                         "output_tokens_details"):
                value = getattr(got, name)
                if value is not None:
                    setattr(usage, name, value)
        if event.delta is None or event.delta.stop_reason is None:
            return []
        self.stop_reason = event.delta.stop_reason
        reason = finish_reason(self.stop_reason, self.json_mode and not self.tools)
        return [self._chunk(Delta(), reason)]

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        if not self.started:
            delta.role = "assistant"
            self.started = True
        return ChatCompletionChunk(id=self.id, model=self.model,
                                   choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)])


async def chunks_of(resp: aiohttp.ClientResponse, state: StreamState, provider: str) -> AsyncIterator[list[Any]]:
    """The OpenAI chunks of an Anthropic stream, a list per network read; chunks before an error
    event still reach the client, then it raises; a stream ending before ``message_stop`` is a 502."""
    batches = iter_sse_payloads(resp, provider)
    try:
        async for payloads in batches:
            out: list[ChatCompletionChunk] = []
            for event in decode_events(payloads, provider):
                try:
                    out += state.chunks(event)
                except ProviderError:
                    if out:
                        yield out
                    raise
                if state.done:
                    break
            if out:
                yield out
            if state.done:
                return
    finally:
        await batches.aclose()
    raise ProviderError(502, f"{provider} upstream ended the stream before message_stop",
                        code="upstream_disconnected")
