"""OpenAI requests to Ollama's bodies, and Ollama's answers to OpenAI's chat format."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from sidecar import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ProviderError,
    ResponseMessage,
    ToolCall,
    Usage,
)

CHAT_PARAMS = ["max_tokens", "max_completion_tokens", "stream", "stream_options", "temperature", "top_p", "seed",
               "stop", "frequency_penalty", "presence_penalty", "response_format", "reasoning_effort"]
TOOL_PARAMS = ["tools", "tool_choice"]
OPTIONS = frozenset({
    "num_ctx", "num_predict", "num_keep", "num_batch", "num_gpu", "main_gpu", "num_thread", "top_k", "top_p",
    "min_p", "typical_p", "tfs_z", "temperature", "seed", "stop", "repeat_penalty", "repeat_last_n",
    "presence_penalty", "frequency_penalty", "mirostat", "mirostat_eta", "mirostat_tau", "penalize_newline",
    "numa", "low_vram", "use_mmap", "use_mlock",
})
"""Ollama's ``options`` (its Modelfile parameters)."""
TOP_LEVEL = frozenset({"keep_alive", "think", "format", "truncate", "raw", "system", "template", "suffix"})
"""Ollama request keys outside ``options``."""
_OPENAI_TO_OPTION = {"max_tokens": "num_predict", "max_completion_tokens": "num_predict", "temperature": "temperature",
                     "top_p": "top_p", "seed": "seed", "frequency_penalty": "frequency_penalty",
                     "presence_penalty": "presence_penalty"}
_CONSUMED = frozenset({"model", "messages", "stream", "stream_options", "stop", "response_format", "tools",
                       "tool_choice", "reasoning_effort", "input", "dimensions", "user",
                       *_OPENAI_TO_OPTION})
_FINISH = {"stop": "stop", "length": "length"}


def request_fields(body: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ollama's top-level keys and ``options`` for an OpenAI ``body``: OpenAI params mapped
    (``max_tokens`` -> ``num_predict``, ``stop``, ``seed``...), Ollama's own keys from the body
    or, as defaults, from ``litellm_params``."""
    top: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in params.items():
        if key in OPTIONS:
            options[key] = value
        elif key in TOP_LEVEL:
            top[key] = value
    for key, value in body.items():
        if value is None:
            continue
        if key in _OPENAI_TO_OPTION:
            options[_OPENAI_TO_OPTION[key]] = value
        elif key == "stop":
            options["stop"] = [value] if isinstance(value, str) else value
        elif key == "response_format" and isinstance(value, dict):
            if value.get("type") == "json_object":
                top["format"] = "json"
            elif value.get("type") == "json_schema":
                schema = (value.get("json_schema") or {}).get("schema")
                if schema:
                    top["format"] = schema
        elif key == "reasoning_effort":
            top["think"] = True
        elif key in TOP_LEVEL:
            top[key] = value
        elif key not in _CONSUMED:
            options[key] = value  # a provider-specific sampling knob (top_k, num_ctx, mirostat...)
    return top, options


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def images_of(content: Any) -> list[str]:
    """The base64 of a message's images: Ollama takes images as base64, not URLs."""
    if not isinstance(content, list):
        return []
    images = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "image_url":
            continue
        url = part.get("image_url")
        url = url.get("url", "") if isinstance(url, dict) else str(url or "")
        if url.startswith("data:"):
            images.append(url.split(",", 1)[-1])
        elif url.startswith(("http://", "https://")):
            raise ProviderError(400, "ollama takes images as base64 data URLs (data:image/png;base64,...), "
                                     "not links", param="messages", code="invalid_image_url")
        else:
            images.append(url)
    return images


_decode_any = msgspec.json.decode


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages as ``/api/chat`` takes them: text content, images apart, tool-call
    arguments as objects, a tool result named by its call's function (``tool_name``)."""
    names: dict[str, str] = {}
    out = []
    for m in messages:
        msg: dict[str, Any] = {"role": m.get("role"), "content": text_of(m.get("content"))}
        images = images_of(m.get("content"))
        if images:
            msg["images"] = images
        if m.get("reasoning_content"):
            msg["thinking"] = m["reasoning_content"]
        calls = []
        for call in m.get("tool_calls") or []:
            fn = call.get("function") or {}
            names[call.get("id", "")] = fn.get("name", "")
            args = fn.get("arguments") or "{}"
            try:
                args = _decode_any(args) if isinstance(args, str) else args
            except msgspec.DecodeError:
                raise ProviderError(400, "a tool call's arguments are not valid JSON", param="messages",
                                    code="invalid_tool_arguments") from None
            calls.append({"function": {"name": fn.get("name", ""), "arguments": args}})
        if calls:
            msg["tool_calls"] = calls
        if m.get("role") == "tool" and names.get(m.get("tool_call_id", "")):
            msg["tool_name"] = names[m["tool_call_id"]]
        out.append(msg)
    return out


_SECTIONS = {"system": "System", "assistant": "Assistant"}


def generate_prompt(messages: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """One prompt for ``/api/generate``, in the sections LiteLLM writes (``### User:``,
    ``### System:``, ``### Assistant:``; consecutive messages of one section merged), and the
    messages' images."""
    sections: list[tuple[str, str]] = []
    images: list[str] = []
    for m in messages:
        title = _SECTIONS.get(m.get("role", ""), "User")  # user, tool and function results
        text = text_of(m.get("content"))
        images += images_of(m.get("content"))
        if sections and sections[-1][0] == title:
            sections[-1] = (title, sections[-1][1] + text)
        else:
            sections.append((title, text))
    return "".join(f"### {title}:\n{text}\n\n" for title, text in sections if text), images


# ---------------------------------------------------------------- answers


class OllamaFunction(msgspec.Struct):
    name: str = ""
    arguments: Any = None


class OllamaToolCall(msgspec.Struct):
    function: OllamaFunction


class OllamaMessage(msgspec.Struct):
    role: str = "assistant"
    content: str = ""
    thinking: str | None = None
    tool_calls: list[OllamaToolCall] | None = None


class OllamaLine(msgspec.Struct):
    """An answer of ``/api/chat`` or ``/api/generate``, or one line of their streams."""

    model: str = ""
    message: OllamaMessage | None = None
    response: str | None = None
    thinking: str | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


class OllamaEmbeddings(msgspec.Struct):
    embeddings: list[list[float]]
    model: str = ""
    prompt_eval_count: int = 0


_encode = msgspec.json.Encoder().encode


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_of(line: OllamaLine) -> Usage:
    return Usage(prompt_tokens=line.prompt_eval_count, completion_tokens=line.eval_count,
                 total_tokens=line.prompt_eval_count + line.eval_count)


def _tool_calls(line: OllamaLine) -> list[ToolCall]:
    calls = line.message.tool_calls if line.message is not None else None
    out = []
    for call in calls or ():
        args = call.function.arguments
        text = args if isinstance(args, str) else _encode(args if args is not None else {}).decode()
        out.append(ToolCall(function=FunctionCall(name=call.function.name, arguments=text)))
    return out


def finish_reason(line: OllamaLine, called: bool) -> str:
    """``done_reason`` in OpenAI's words; a turn that called tools finishes with ``tool_calls``."""
    if called:
        return "tool_calls"
    return _FINISH.get(line.done_reason or "stop", "stop")


def completion_of(line: OllamaLine, model: str) -> ChatCompletion:
    """A whole answer (``stream: false``) as a ChatCompletion."""
    msg = line.message
    text = msg.content if msg is not None else (line.response or "")
    thinking = msg.thinking if msg is not None else line.thinking
    calls = _tool_calls(line)
    message = ResponseMessage(content=text if text or not calls else None, reasoning_content=thinking or None,
                              tool_calls=calls or None)
    return ChatCompletion(id=new_id(), model=line.model or model, usage=usage_of(line),
                          choices=[Choice(index=0, message=message, finish_reason=finish_reason(line, bool(calls)))])


class StreamState:
    """What a stream's chunks share: id, model, whether the role was sent, whether tools were called."""

    def __init__(self, model: str) -> None:
        self.id = new_id()
        self.model = model
        self.started = False
        self.calls = 0
        self.done = False

    def chunks(self, line: OllamaLine) -> list[ChatCompletionChunk]:
        """The chunks for one stream line: its content, thinking or tool calls; on the last
        (``done: true``) the finish reason, then the usage."""
        msg = line.message
        text = msg.content if msg is not None else (line.response or "")
        thinking = msg.thinking if msg is not None else line.thinking
        pieces = []
        for i, call in enumerate(_tool_calls(line)):
            pieces.append({"index": self.calls + i, "id": call.id, "type": "function",
                           "function": {"name": call.function.name, "arguments": call.function.arguments}})
        self.calls += len(pieces)
        out = []
        if text or thinking or pieces or not self.started:
            delta = Delta(role=None if self.started else "assistant", content=text if text or not pieces else None,
                          reasoning_content=thinking or None, tool_calls=pieces or None)
            out.append(self._chunk([ChunkChoice(index=0, delta=delta)]))
            self.started = True
        if line.done:
            self.done = True
            out.append(self._chunk([ChunkChoice(index=0, delta=Delta(),
                                                finish_reason=finish_reason(line, self.calls > 0))]))
            out.append(self._chunk([], usage_of(line)))  # (the core drops it for a client that did not ask)
        return out

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.id, model=self.model, choices=choices, usage=usage)
