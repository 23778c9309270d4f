"""Anthropic's message (``POST /v1/messages`` answers, and the pieces of its stream events) and
its translation to OpenAI's chat completion."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from sidecar import ChatCompletion, Choice, FunctionCall, ResponseMessage, ToolCall, Usage
from sidecar_anthropic.convert import JSON_TOOL


class Block(msgspec.Struct):
    """A content block: ``text``, ``thinking``, ``redacted_thinking``, ``tool_use`` (others ignored)."""

    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: dict[str, Any] | None = None


class Message(msgspec.Struct):
    id: str = ""
    model: str = ""
    content: list[Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: AnthropicUsage = msgspec.field(default_factory=AnthropicUsage)


FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
          "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_encode = msgspec.json.Encoder().encode


def finish_reason(stop_reason: str | None, json_mode: bool = False) -> str:
    """Anthropic's ``stop_reason`` in OpenAI's words; the JSON tool's call is a plain ``stop``."""
    reason = FINISH.get(stop_reason or "end_turn", "stop")
    return "stop" if json_mode and reason == "tool_calls" else reason


def usage_of(usage: AnthropicUsage, reasoning_chars: int = 0) -> Usage:
    """OpenAI's usage as LiteLLM reports Anthropic's: the prompt counts cache reads and writes,
    ``cached_tokens`` the reads (``cache_write_tokens`` the writes); reasoning tokens from
    ``output_tokens_details.thinking_tokens``, else estimated from the thinking text (~4 chars a token)."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    prompt = (usage.input_tokens or 0) + read + written
    completion = usage.output_tokens or 0
    details = {"cached_tokens": read}
    if written:
        details["cache_write_tokens"] = written
    thinking = (usage.output_tokens_details or {}).get("thinking_tokens")
    if thinking is None and reasoning_chars:
        thinking = min(-(-reasoning_chars // 4), completion)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 prompt_tokens_details=details,
                 completion_tokens_details={"reasoning_tokens": thinking} if thinking is not None else None)


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion_of(message: Message, model: str, json_mode: bool = False) -> ChatCompletion:
    """A whole Messages API answer as a ChatCompletion."""
    text: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text" and block.text:
            text.append(block.text)
        elif block.type == "thinking":
            reasoning.append(block.thinking or "")
            thinking_blocks.append({"type": "thinking", "thinking": block.thinking or "",
                                    "signature": block.signature or ""})
        elif block.type == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.data or ""})
        elif block.type == "tool_use":
            args = _encode(block.input if block.input is not None else {}).decode()
            if json_mode and block.name == JSON_TOOL:
                text.append(args)
            else:
                calls.append(ToolCall(id=block.id or "", function=FunctionCall(name=block.name or "", arguments=args)))
    content = "".join(text)
    thought = "".join(reasoning)
    msg = ResponseMessage(content=content if content or not calls else None, tool_calls=calls or None,
                          reasoning_content=thought or None, thinking_blocks=thinking_blocks or None)
    reason = finish_reason(message.stop_reason, json_mode and not calls)
    return ChatCompletion(id=message.id or new_id(), model=message.model or model,
                          choices=[Choice(index=0, message=msg, finish_reason=reason)],
                          usage=usage_of(message.usage, len(thought)))
