"""OpenAI chat requests to Cohere's ``/v2/chat`` body, and its answers to OpenAI's chat format."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from sidecar import ChatCompletion, Choice, FunctionCall, ProviderError, ResponseMessage, ToolCall, Usage

CHAT_PARAMS = ["stream", "stream_options", "temperature", "max_tokens", "max_completion_tokens", "top_p",
               "frequency_penalty", "presence_penalty", "stop", "seed", "tools", "tool_choice", "response_format"]
EMBEDDING_PARAMS = ["dimensions"]  # (encoding_format: base64 is the core's, from the floats every model gives)
COHERE_CHAT_KEYS = ("k", "p", "documents", "citation_options", "safety_mode", "strict_tools", "thinking", "priority")
"""Cohere's own ``/v2/chat`` keys: from the request (``extra_body``) or, as defaults, ``litellm_params``."""
_SAME = ("temperature", "seed", "frequency_penalty", "presence_penalty")
_TOOL_CHOICE = {"none": "NONE", "required": "REQUIRED"}
FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
FAILED = {"ERROR": (502, "server"), "TIMEOUT": (504, "timeout")}
"""Finish reasons that mean the generation failed: the status and kind the client gets."""


# ---------------------------------------------------------------- requests


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _user_content(content: Any, at: int) -> str | list[dict[str, Any]]:
    """Text as it is; parts as Cohere's ``text`` and ``image_url`` content items."""
    if not isinstance(content, list):
        return text_of(content)
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            url = part.get("image_url")
            parts.append({"type": "image_url", "image_url": url if isinstance(url, dict) else {"url": str(url)}})
        else:
            raise ProviderError(400, f"cohere takes text and image_url content parts, not {kind!r}",
                                param=f"messages[{at}].content", code="invalid_content")
    return parts


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages as Cohere v2 takes them: system (and developer), user (text and images),
    assistant (text, ``tool_calls``, its ``reasoning_content`` as the ``tool_plan``), tool results."""
    out = []
    for at, m in enumerate(messages):
        role = m.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": text_of(m.get("content"))})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(m.get("content"), at)})
        elif role == "assistant":
            msg: dict[str, Any] = {"role": "assistant"}
            calls = [{"id": c.get("id", ""), "type": "function",
                      "function": {"name": (c.get("function") or {}).get("name", ""),
                                   "arguments": (c.get("function") or {}).get("arguments") or "{}"}}
                     for c in m.get("tool_calls") or ()]
            text = text_of(m.get("content"))
            if text or not calls:
                msg["content"] = text
            if calls:
                msg["tool_calls"] = calls
                if m.get("reasoning_content"):
                    msg["tool_plan"] = m["reasoning_content"]
            out.append(msg)
        elif role == "tool":
            out.append({"role": "tool", "tool_call_id": m.get("tool_call_id", ""), "content": text_of(m.get("content"))})
        else:
            raise ProviderError(400, f"cohere takes system, user, assistant and tool messages, not {role!r}",
                                param=f"messages[{at}].role", code="invalid_role")
    return out


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type", "function") != "function" or not fn.get("name"):
            raise ProviderError(400, "cohere takes function tools: {type: function, function: {name, parameters}}",
                                param=f"tools[{i}]", code="invalid_tool")
        spec = {"name": fn["name"], "parameters": fn.get("parameters") or {"type": "object", "properties": {}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        out.append({"type": "function", "function": spec})
    return out


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """Cohere's ``tool_choice`` (``REQUIRED``/``NONE``; ``auto`` is its default, not sent) and the
    tools to send: a named function is ``REQUIRED`` with only that tool."""
    if choice is None or choice == "auto":
        return None, tools
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return _TOOL_CHOICE[choice], tools
    name = ((choice.get("function") or {}).get("name") if isinstance(choice, dict) else None)
    named = [t for t in tools if t["function"]["name"] == name]
    if not named:
        raise ProviderError(400, "tool_choice must be auto, none, required or a function named in `tools`",
                            param="tool_choice", code="invalid_tool_choice")
    return "REQUIRED", named


def _response_format(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "json_schema": schema} if schema else {"type": "json_object"}
    if kind in ("json_object", "text"):
        return {"type": kind}
    raise ProviderError(400, "response_format.type must be text, json_object or json_schema",
                        param="response_format", code="invalid_response_format")


def chat_body(model: str, body: Mapping[str, Any], params: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    """The ``/v2/chat`` body for an OpenAI ``body``: ``top_p`` as ``p``, ``stop`` as
    ``stop_sequences``, ``max_completion_tokens`` as ``max_tokens``, tools and ``tool_choice``."""
    out: dict[str, Any] = {"model": model, "messages": chat_messages(body["messages"])}
    for key in COHERE_CHAT_KEYS:
        value = body.get(key, params.get(key))
        if value is not None:
            out[key] = value
    if body.get("top_k") is not None and "k" not in out:
        out["k"] = body["top_k"]
    for key in _SAME:
        if body.get(key) is not None:
            out[key] = body[key]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        out["max_tokens"] = limit
    if body.get("top_p") is not None:
        out["p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if body.get("tools"):
        choice, tools = _tool_choice(body.get("tool_choice"), _tools(body["tools"]))
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    fmt = _response_format(body.get("response_format"))
    if fmt is not None:
        out["response_format"] = fmt
    out["stream"] = stream
    return out


# ---------------------------------------------------------------- answers


class CohereFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class CohereToolCall(msgspec.Struct):
    id: str | None = None
    type: str | None = None
    function: CohereFunction | None = None


class CohereContent(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    thinking: str | None = None


class CohereMessage(msgspec.Struct):
    role: str = "assistant"
    content: list[CohereContent] | None = None
    tool_calls: list[CohereToolCall] | None = None
    tool_plan: str | None = None


class CohereTokens(msgspec.Struct):
    input_tokens: float | None = None
    output_tokens: float | None = None


class CohereUsage(msgspec.Struct):
    billed_units: CohereTokens | None = None
    tokens: CohereTokens | None = None
    cached_tokens: float | None = None


class CohereChat(msgspec.Struct):
    id: str = ""
    finish_reason: str | None = None
    message: CohereMessage = msgspec.field(default_factory=CohereMessage)
    usage: CohereUsage | None = None


def usage_of(usage: CohereUsage | None) -> Usage:
    """``usage.tokens`` (what the model read and wrote), else the billed units."""
    counts = (usage.tokens or usage.billed_units) if usage is not None else None
    prompt = int((counts.input_tokens if counts else 0) or 0)
    completion = int((counts.output_tokens if counts else 0) or 0)
    cached = usage.cached_tokens if usage is not None else None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 prompt_tokens_details={"cached_tokens": int(cached)} if cached is not None else None)


def check_finish(reason: str | None, error: str | None, provider: str) -> None:
    """A generation that ended in ``ERROR`` or ``TIMEOUT`` fails the call."""
    if reason in FAILED:
        status, kind = FAILED[reason]
        raise ProviderError(status, f"{provider} upstream ended the generation with {reason}"
                                    f"{': ' + error if error else ''}", kind=kind, code="upstream_error")


def finish_reason(reason: str | None, called: bool) -> str:
    if called:
        return "tool_calls"
    return FINISH.get(reason or "COMPLETE", "stop")


def new_id(cohere_id: str | None) -> str:
    return cohere_id or f"chatcmpl-{uuid.uuid4().hex}"


def completion_of(answer: CohereChat, model: str, provider: str) -> ChatCompletion:
    """A whole ``/v2/chat`` answer as a ChatCompletion: text items joined, thinking and the
    tool plan as ``reasoning_content``, tool calls as OpenAI's."""
    check_finish(answer.finish_reason, None, provider)
    msg = answer.message
    items = msg.content or []
    text = "".join(c.text or "" for c in items if c.type in (None, "text"))
    reasoning = "".join(c.thinking or "" for c in items if c.type == "thinking") + (msg.tool_plan or "")
    calls = [ToolCall(id=c.id or "", function=FunctionCall(name=(c.function or CohereFunction()).name or "",
                                                           arguments=(c.function or CohereFunction()).arguments or "{}"))
             for c in msg.tool_calls or ()]
    message = ResponseMessage(content=text if text or not calls else None, reasoning_content=reasoning or None,
                              tool_calls=calls or None)
    choice = Choice(index=0, message=message, finish_reason=finish_reason(answer.finish_reason, bool(calls)))
    return ChatCompletion(id=new_id(answer.id), model=model, choices=[choice], usage=usage_of(answer.usage))
