"""Cohere's ``/v2/chat`` stream (SSE events typed ``message-start`` ... ``message-end``) read as it
arrives and turned into OpenAI chunks."""

from __future__ import annotations

from typing import Any

import msgspec

from sidecar import ChatCompletionChunk, ChunkChoice, Delta
from sidecar_cohere.convert import CohereUsage, check_finish, finish_reason, new_id, usage_of


class EventContent(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    thinking: str | None = None


class EventFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class EventToolCall(msgspec.Struct):
    id: str | None = None
    type: str | None = None
    function: EventFunction | None = None


class EventMessage(msgspec.Struct):
    role: str | None = None
    content: EventContent | list[Any] | None = None  # (message-start sends an empty list)
    tool_plan: str | None = None
    tool_calls: EventToolCall | list[Any] | None = None


class EventDelta(msgspec.Struct):
    message: EventMessage | None = None
    finish_reason: str | None = None
    usage: CohereUsage | None = None
    error: str | None = None


class Event(msgspec.Struct):
    """One stream event; only the fields the translation reads."""

    type: str = ""
    id: str | None = None
    index: int | None = None
    delta: EventDelta | None = None


events_decoder = msgspec.json.Decoder(list[Event])


class StreamState:
    """What a stream's chunks share: id, model, the role sent, tool calls by Cohere's index."""

    def __init__(self, model: str, provider: str) -> None:
        self.id = new_id(None)
        self.model = model
        self.provider = provider
        self.started = False
        self.calls: dict[int, int] = {}  # Cohere's tool-call index -> OpenAI's
        self.done = False

    def chunks(self, event: Event) -> list[ChatCompletionChunk]:
        """The chunks for one event (none for ``content-end``, citations and the like)."""
        kind = event.type
        msg = event.delta.message if event.delta is not None else None
        if kind == "message-start":
            if event.id:
                self.id = event.id
            return self._delta(Delta(content=""))
        if kind in ("content-start", "content-delta") and msg is not None and isinstance(msg.content, EventContent):
            if msg.content.thinking:
                return self._delta(Delta(reasoning_content=msg.content.thinking))
            if msg.content.text:
                return self._delta(Delta(content=msg.content.text))
            return []
        if kind == "tool-plan-delta" and msg is not None and msg.tool_plan:
            return self._delta(Delta(reasoning_content=msg.tool_plan))
        if kind in ("tool-call-start", "tool-call-delta") and msg is not None and isinstance(msg.tool_calls, EventToolCall):
            return self._tool_call(kind, event.index or 0, msg.tool_calls)
        if kind == "message-end":
            return self._end(event.delta or EventDelta())
        return []

    def _tool_call(self, kind: str, index: int, call: EventToolCall) -> list[ChatCompletionChunk]:
        fn = call.function or EventFunction()
        if kind == "tool-call-start":
            self.calls[index] = len(self.calls)
            piece: dict[str, Any] = {"index": self.calls[index], "id": call.id or f"call_{new_id(None)[9:]}",
                                     "type": "function", "function": {"name": fn.name or "", "arguments": fn.arguments or ""}}
        else:
            piece = {"index": self.calls.get(index, index), "function": {"arguments": fn.arguments or ""}}
        return self._delta(Delta(tool_calls=[piece]))

    def _end(self, delta: EventDelta) -> list[ChatCompletionChunk]:
        check_finish(delta.finish_reason, delta.error, self.provider)
        self.done = True
        out = [] if self.started else self._delta(Delta(content=""))
        out.append(self._chunk([ChunkChoice(index=0, delta=Delta(),
                                            finish_reason=finish_reason(delta.finish_reason, bool(self.calls)))]))
        out.append(self._chunk([], usage_of(delta.usage)))  # (the core drops it for a client that did not ask)
        return out

    def _delta(self, delta: Delta) -> list[ChatCompletionChunk]:
        if not self.started:
            delta.role = "assistant"
            self.started = True
        return [self._chunk([ChunkChoice(index=0, delta=delta)])]

    def _chunk(self, choices: list[ChunkChoice], usage: Any = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.id, model=self.model, choices=choices, usage=usage)
