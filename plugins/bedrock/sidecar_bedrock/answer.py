"""Converse answers and ConverseStream events in OpenAI's chat format."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from sidecar import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    Usage,
)

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
          "model_context_window_exceeded": "length"}
"""Converse's ``stopReason`` as OpenAI's ``finish_reason`` (others, such as malformed output: ``stop``)."""


class TokenUsage(msgspec.Struct):
    inputTokens: int = 0
    outputTokens: int = 0
    totalTokens: int = 0
    cacheReadInputTokens: int = 0
    cacheWriteInputTokens: int = 0


class ToolUse(msgspec.Struct):
    toolUseId: str = ""
    name: str = ""
    input: Any = None


class ReasoningText(msgspec.Struct):
    text: str = ""
    signature: str | None = None


class ReasoningContent(msgspec.Struct):
    reasoningText: ReasoningText | None = None
    text: str | None = None  # (a stream delta's shape)
    signature: str | None = None


class ContentBlock(msgspec.Struct):
    text: str | None = None
    toolUse: ToolUse | None = None
    reasoningContent: ReasoningContent | None = None


class Message(msgspec.Struct):
    role: str = "assistant"
    content: list[ContentBlock] = []


class Output(msgspec.Struct):
    message: Message | None = None


class ConverseResponse(msgspec.Struct):
    output: Output = msgspec.field(default_factory=Output)
    stopReason: str = "end_turn"
    usage: TokenUsage = msgspec.field(default_factory=TokenUsage)


class ToolUseDelta(msgspec.Struct):
    input: str = ""


class BlockDelta(msgspec.Struct):
    text: str | None = None
    toolUse: ToolUseDelta | None = None
    reasoningContent: ReasoningContent | None = None


class BlockStart(msgspec.Struct):
    toolUse: ToolUse | None = None


class StreamEvent(msgspec.Struct):
    """The payload of any ConverseStream event; its ``:event-type`` header says which fields it has."""

    role: str | None = None
    contentBlockIndex: int = 0
    start: BlockStart | None = None
    delta: BlockDelta | None = None
    stopReason: str | None = None
    usage: TokenUsage | None = None
    message: str | None = None


_encode = msgspec.json.Encoder().encode


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_of(u: TokenUsage) -> Usage:
    """Converse's counts as OpenAI's: cache reads and writes are input tokens (as LiteLLM counts
    them), cache reads also ``prompt_tokens_details.cached_tokens``."""
    prompt = u.inputTokens + u.cacheReadInputTokens + u.cacheWriteInputTokens
    details = {"cached_tokens": u.cacheReadInputTokens} if u.cacheReadInputTokens or u.cacheWriteInputTokens else None
    return Usage(prompt_tokens=prompt, completion_tokens=u.outputTokens,
                 total_tokens=u.totalTokens or prompt + u.outputTokens, prompt_tokens_details=details)


def finish_of(reason: str | None, json_answer: bool) -> str:
    if reason == "tool_use" and json_answer:
        return "stop"
    return FINISH.get(reason or "end_turn", "stop")


def completion_of(answer: ConverseResponse, model: str, json_tool: str | None) -> ChatCompletion:
    """A Converse answer as a ChatCompletion; the ``json_tool``'s input is the content."""
    text, reasoning, calls = "", "", []
    blocks = answer.output.message.content if answer.output.message is not None else []
    json_answer = None
    for block in blocks:
        if block.text:
            text += block.text
        if block.reasoningContent is not None and block.reasoningContent.reasoningText is not None:
            reasoning += block.reasoningContent.reasoningText.text
        if block.toolUse is not None:
            args = _encode(block.toolUse.input if block.toolUse.input is not None else {}).decode()
            if json_tool is not None and block.toolUse.name == json_tool:
                json_answer = args
            else:
                calls.append(ToolCall(id=block.toolUse.toolUseId, function=FunctionCall(name=block.toolUse.name,
                                                                                          arguments=args)))
    content = json_answer if json_answer is not None else text
    message = ResponseMessage(content=content if content or not calls else None,
                              reasoning_content=reasoning or None, tool_calls=calls or None)
    finish = finish_of(answer.stopReason, json_answer is not None and not calls)
    return ChatCompletion(id=new_id(), model=model, usage=usage_of(answer.usage),
                          choices=[Choice(index=0, message=message, finish_reason=finish)])


class StreamState:
    """What a stream's chunks share. The role goes with the first chunk that carries something,
    so a stream that fails right after ``messageStart`` fails before its first chunk."""

    def __init__(self, model: str, json_tool: str | None) -> None:
        self.id = new_id()
        self.model = model
        self.json_tool = json_tool
        self.started = False
        self.tools: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool call index
        self.json_blocks: set[int] = set()  # blocks whose tool input is the answer's content
        self.stopped = False
        self.finish: str | None = None

    def chunks(self, kind: str, event: StreamEvent) -> list[ChatCompletionChunk]:
        """The chunks for one event (none for bookkeeping events)."""
        if kind == "contentBlockStart" and event.start is not None and event.start.toolUse is not None:
            use = event.start.toolUse
            if self.json_tool is not None and use.name == self.json_tool:
                self.json_blocks.add(event.contentBlockIndex)
                return []
            index = self.tools[event.contentBlockIndex] = len(self.tools)
            return [self._delta(Delta(tool_calls=[{"index": index, "id": use.toolUseId, "type": "function",
                                                   "function": {"name": use.name, "arguments": ""}}]))]
        if kind == "contentBlockDelta" and event.delta is not None:
            return self._block_delta(event.contentBlockIndex, event.delta)
        if kind == "messageStop":
            self.stopped = True
            json_only = bool(self.json_blocks) and not self.tools
            out = [] if self.started else [self._delta(Delta(content=""))]
            out.append(self._chunk([ChunkChoice(index=0, delta=Delta(),
                                                finish_reason=finish_of(event.stopReason, json_only))]))
            return out
        if kind == "metadata" and event.usage is not None:  # (the core drops it for a client that did not ask)
            return [self._chunk([], usage_of(event.usage))]
        return []

    def _block_delta(self, index: int, delta: BlockDelta) -> list[ChatCompletionChunk]:
        if delta.text:
            return [self._delta(Delta(content=delta.text))]
        if delta.toolUse is not None and delta.toolUse.input:
            if index in self.json_blocks:
                return [self._delta(Delta(content=delta.toolUse.input))]
            if index in self.tools:
                piece = {"index": self.tools[index], "function": {"arguments": delta.toolUse.input}}
                return [self._delta(Delta(tool_calls=[piece]))]
        if delta.reasoningContent is not None and delta.reasoningContent.text:
            return [self._delta(Delta(reasoning_content=delta.reasoningContent.text))]
        return []

    def _delta(self, delta: Delta) -> ChatCompletionChunk:
        if not self.started:
            delta.role = "assistant"
            self.started = True
        return self._chunk([ChunkChoice(index=0, delta=delta)])

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.id, model=self.model, choices=choices, usage=usage)
