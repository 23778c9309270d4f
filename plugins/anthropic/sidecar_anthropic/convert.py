"""An OpenAI chat request as the body of Anthropic's ``POST /v1/messages``.

System messages become ``system``; ``tool`` messages ``tool_result`` blocks in a user turn;
consecutive turns of one role are merged (the API wants them alternating); images become
``image`` blocks (base64 from data URLs, ``url`` sources from links); ``cache_control`` on a
message or a content part stays on its block. OpenAI params map to Anthropic's (``stop`` ->
``stop_sequences``, ``tool_choice``, ``reasoning_effort`` -> ``thinking``, ``user`` ->
``metadata.user_id``); ``response_format`` becomes a forced tool, as LiteLLM sends it.
Anything with no Anthropic equivalent is a 400 naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from sidecar import ProviderError

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
JSON_TOOL = "json_tool_call"
"""The tool a ``response_format`` becomes (LiteLLM's name); its call is answered as content."""
THINKING_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096}
"""``reasoning_effort`` -> ``thinking.budget_tokens``, as LiteLLM maps it."""

CHAT_PARAMS = ["stream", "stream_options", "stop", "temperature", "top_p", "max_tokens", "max_completion_tokens",
               "tools", "tool_choice", "extra_headers", "parallel_tool_calls", "response_format", "user"]
REASONING_PARAMS = ["reasoning_effort"]

PARAM_DEFAULTS = ("top_k", "thinking")
"""Anthropic's own ``litellm_params`` keys that are defaults for the request, as LiteLLM reads
them (the core applies the OpenAI params' defaults: ``temperature``, ``max_tokens``...)."""

_CONSUMED = frozenset({"model", "messages", "stream", "stream_options", "stop", "max_tokens",
                       "max_completion_tokens", "tools", "tool_choice", "parallel_tool_calls", "response_format",
                       "user", "reasoning_effort", "functions", "function_call", "extra_headers"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(.*)$", re.DOTALL)
_decode_any = msgspec.json.decode


def bad(message: str, param: str, code: str = "unsupported_by_anthropic") -> ProviderError:
    """A 400 naming what the Messages API cannot take."""
    return ProviderError(400, message, param=param, code=code, kind="bad_request")


def build_request(body: Mapping[str, Any], model: str, params: Mapping[str, Any], *, stream: bool,
                  default_max_tokens: int | None = None) -> tuple[dict[str, Any], bool]:
    """The Messages API body for an OpenAI chat ``body`` (``litellm_params`` as defaults), and
    whether ``response_format`` was turned into the JSON tool (answers then carry its input as
    content). ``default_max_tokens`` is the model's max output (else 4096) when none is asked."""
    sent = {**{k: params[k] for k in PARAM_DEFAULTS if params.get(k) is not None}, **body}
    system, messages = convert_messages(sent.get("messages") or [])
    out: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        out["system"] = system
    max_tokens = sent.get("max_completion_tokens") or sent.get("max_tokens")
    thinking = _thinking(sent)
    if max_tokens is None:
        max_tokens = default_max_tokens or DEFAULT_MAX_TOKENS
        budget = (thinking or {}).get("budget_tokens")
        if isinstance(budget, int) and budget >= max_tokens:  # the budget must stay below max_tokens
            max_tokens = budget + DEFAULT_MAX_TOKENS
    out["max_tokens"] = max_tokens
    for key in ("temperature", "top_p"):
        if sent.get(key) is not None:
            out[key] = sent[key]
    stop = sent.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if thinking is not None:
        out["thinking"] = thinking
    if sent.get("user"):
        out["metadata"] = {"user_id": sent["user"]}
    tools, choice = _tools(sent)
    json_mode = False
    response_format = sent.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        tools.append(_json_tool(response_format))
        choice = {"type": "tool", "name": JSON_TOOL}
        json_mode = True
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    for key, value in sent.items():  # Anthropic's own keys (top_k, thinking, container...) pass through
        if key not in _CONSUMED and key not in out and key not in ("temperature", "top_p") and value is not None:
            out[key] = value
    if stream:
        out["stream"] = True
    return out, json_mode


def _thinking(sent: Mapping[str, Any]) -> dict[str, Any] | None:
    """A ``thinking`` object passed through, else one from ``reasoning_effort``."""
    if sent.get("thinking") is not None:
        return sent["thinking"]
    effort = sent.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise bad(f"anthropic takes reasoning_effort low, medium or high (a thinking budget); "
                  f"{effort!r} has no equivalent", "reasoning_effort")
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}


# ---------------------------------------------------------------- tools


def _tools(sent: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    if sent.get("functions") is not None or sent.get("function_call") is not None:
        raise bad("anthropic takes `tools`, not the deprecated `functions`", "functions")
    tools = [_tool(t) for t in sent.get("tools") or []]
    choice = sent.get("tool_choice")
    out: dict[str, Any] | None = None
    if choice is not None:
        out = _tool_choice(choice)
    if sent.get("parallel_tool_calls") is False and (out is None or out["type"] != "none"):
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return tools, out


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(
            tool.get("function"), dict):
        kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
        raise bad(f"anthropic takes function tools only, not {kind!r} tools", "tools")
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn.get("name", "")}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    if fn.get("strict") is not None:
        out["strict"] = fn["strict"]
    if tool.get("cache_control") is not None:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name", "")}
    raise bad(f"anthropic takes tool_choice auto, none, required or a named function, not {choice!r}",
              "tool_choice")


def _json_tool(response_format: dict[str, Any]) -> dict[str, Any]:
    """``response_format`` as the tool the model is made to call (LiteLLM's way)."""
    schema = None
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
    if not schema:
        schema = {"type": "object", "additionalProperties": True, "properties": {}}
    return {"name": JSON_TOOL, "input_schema": schema}


# ---------------------------------------------------------------- messages


def convert_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``system`` blocks and the alternating ``messages`` of Anthropic's API."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        role = m.get("role")
        if role in ("system", "developer"):
            system += _with_cache_control(_text_blocks(m.get("content"), f"messages[{i}]"), m)
            continue
        if role == "user":
            blocks = _with_cache_control(_user_blocks(m.get("content"), f"messages[{i}]"), m)
        elif role == "assistant":
            blocks = _with_cache_control(_assistant_blocks(m, f"messages[{i}]"), m)
        elif role == "tool":
            blocks = [_tool_result(m, f"messages[{i}]")]
            role = "user"
        else:
            raise bad(f"anthropic has no {role!r} messages (messages[{i}])", "messages")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _with_cache_control(blocks: list[dict[str, Any]], message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's ``cache_control`` marks its last block, as LiteLLM places it."""
    if message.get("cache_control") is not None and blocks:
        blocks[-1] = {**blocks[-1], "cache_control": message["cache_control"]}
    return blocks


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise bad(f"{where} may hold text parts only here", "messages")
        if part.get("text"):
            blocks.append(_part_cache(part, {"type": "text", "text": part["text"]}))
    return blocks


def _part_cache(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return _text_blocks(content, where)
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append(_part_cache(part, {"type": "text", "text": part["text"]}))
        elif kind == "image_url":
            blocks.append(_part_cache(part, image_block(part.get("image_url"), f"{where}.content[{j}]")))
        elif kind == "file":
            blocks.append(_part_cache(part, _document_block(part.get("file"), f"{where}.content[{j}]")))
        else:
            raise bad(f"anthropic cannot take {kind!r} content ({where}.content[{j}])", "messages")
    return blocks


def image_block(image: Any, where: str) -> dict[str, Any]:
    """An ``image_url`` part as an image block: a data URL as base64, a link as a ``url`` source."""
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.match(url)
    if match is None:
        raise bad(f"{where}: an image must be an http(s) URL or a base64 data URL", "messages",
                  code="invalid_image_url")
    media_type = match.group(1).lower()
    if media_type not in _IMAGE_TYPES:
        raise bad(f"{where}: anthropic takes jpeg, png, gif or webp images, not {media_type}", "messages",
                  code="invalid_image_url")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": match.group(2)}}


def _document_block(file: Any, where: str) -> dict[str, Any]:
    """A ``file`` part with a PDF data URL as a ``document`` block; other files have no equivalent."""
    data = file.get("file_data", "") if isinstance(file, dict) else ""
    match = _DATA_URL.match(data)
    if match is None or match.group(1).lower() != "application/pdf":
        raise bad(f"{where}: anthropic takes files as PDF data URLs in `file_data` (file ids have no equivalent)",
                  "messages")
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": match.group(2)}}


def _assistant_blocks(m: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [dict(b) for b in m.get("thinking_blocks") or [] if isinstance(b, dict)]
    blocks += _text_blocks(m.get("content"), where)
    for call in m.get("tool_calls") or []:
        fn = call.get("function") or {}
        args = fn.get("arguments") or "{}"
        try:
            value = _decode_any(args) if isinstance(args, str) else args
        except msgspec.DecodeError:
            raise bad(f"{where}: a tool call's arguments are not valid JSON", "messages",
                      code="invalid_tool_arguments") from None
        blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""),
                       "input": value if isinstance(value, dict) else {}})
    return blocks


def _tool_result(m: dict[str, Any], where: str) -> dict[str, Any]:
    content = m.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.get("tool_call_id", "")}
    if isinstance(content, str):
        block["content"] = content
    elif content:
        block["content"] = _user_blocks(content, where)
    if m.get("cache_control") is not None:
        block["cache_control"] = m["cache_control"]
    return block
