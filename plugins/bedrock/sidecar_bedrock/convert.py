"""An OpenAI chat request as a Converse request body (the same body serves ConverseStream)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sidecar import ProviderError
from sidecar_bedrock import models

JSON_TOOL = "json_tool_call"
"""The forced tool a ``response_format`` schema becomes when it has no name (LiteLLM's name)."""
THINKING_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096}
"""``reasoning_effort`` as Claude's thinking ``budget_tokens``, as LiteLLM maps it."""
DEFAULT_MAX_TOKENS = 4096
"""Added to a thinking budget when the client set no max_tokens (Claude needs max_tokens > budget)."""
CONVERSE_FIELDS = ("guardrailConfig", "performanceConfig", "requestMetadata", "promptVariables",
                   "additionalModelResponseFieldPaths", "serviceTier")
"""Converse's own top-level fields, taken from the request or, as defaults, from ``litellm_params``."""
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_CONSUMED = frozenset({"model", "messages", "stream", "stream_options", "stop", "temperature", "top_p",
                       "max_tokens", "max_completion_tokens", "tools", "tool_choice", "response_format",
                       "reasoning_effort", "top_k", *CONVERSE_FIELDS})

_decode = msgspec.json.decode


def bad(message: str, param: str, code: str = "invalid_request") -> ProviderError:
    return ProviderError(400, message, param=param, code=code, kind="bad_request")


class Request:
    """The Converse body for one call, and what reading its answer needs to know."""

    def __init__(self, body: dict[str, Any], json_tool: str | None) -> None:
        self.body = body
        self.json_tool = json_tool
        """The tool whose input is the answer's content (``response_format``), if any."""


def converse_request(sent: Mapping[str, Any], params: Mapping[str, Any], model: str, drop: bool) -> Request:
    """The Converse body for the OpenAI request ``sent``; ``drop`` drops values Bedrock has no
    equivalent for (``tool_choice: "none"``) instead of refusing them."""
    system, messages = convert_messages(sent["messages"])
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference_config(sent)
    extra: dict[str, Any] = {}
    thinking = _thinking(sent, model)
    if thinking is not None:
        extra["thinking"] = thinking
        if "maxTokens" not in inference:
            inference["maxTokens"] = thinking["budget_tokens"] + DEFAULT_MAX_TOKENS
    tools = [_tool_spec(t) for t in sent.get("tools") or ()]
    choice = _tool_choice(sent.get("tool_choice"), drop)
    json_tool = None
    fmt = sent.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        spec, json_tool = _format_tool(fmt)
        tools.append(spec)
        if models.takes_tool_choice(model) and thinking is None:  # (Claude refuses a forced tool while thinking)
            choice = {"tool": {"name": json_tool}}
    if tools:
        body["toolConfig"] = {"tools": tools, **({"toolChoice": choice} if choice else {})}
    if inference:
        body["inferenceConfig"] = inference
    top_k = sent.get("top_k", params.get("top_k"))
    if top_k is not None:
        base = models.base_model(model)
        if base.startswith("amazon.nova"):
            extra["inferenceConfig"] = {"topK": top_k}
        else:
            extra["top_k"] = top_k
    for key in CONVERSE_FIELDS:
        value = sent.get(key, params.get(key))
        if value is not None:
            body[key] = value
    for key, value in sent.items():  # a model's own fields (Claude's ``thinking``...), as LiteLLM sends them
        if key not in _CONSUMED and value is not None:
            extra[key] = value
    if extra:
        body["additionalModelRequestFields"] = extra
    return Request(body, json_tool)


def _inference_config(sent: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = sent.get("max_completion_tokens", sent.get("max_tokens"))
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if sent.get("temperature") is not None:
        config["temperature"] = sent["temperature"]
    if sent.get("top_p") is not None:
        config["topP"] = sent["top_p"]
    stop = sent.get("stop")
    stop = [stop] if isinstance(stop, str) else stop
    stop = [s for s in stop or () if s]  # (Converse refuses an empty stop sequence)
    if stop:
        config["stopSequences"] = stop
    return config


def _thinking(sent: Mapping[str, Any], model: str) -> dict[str, Any] | None:
    effort = sent.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in THINKING_BUDGETS:
        raise bad(f"bedrock maps reasoning_effort low, medium or high to a thinking budget; "
                  f"{effort!r} has none", "reasoning_effort", "unsupported_value")
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}


def _tool_spec(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
        raise bad(f"bedrock takes function tools only; a tool of type {kind!r} has no equivalent", "tools",
                  "unsupported_tool_type")
    fn = tool["function"]
    spec: dict[str, Any] = {"name": fn.get("name", "")}
    if fn.get("description"):
        spec["description"] = fn["description"]
    spec["inputSchema"] = {"json": fn.get("parameters") or {"type": "object", "properties": {}}}
    return {"toolSpec": spec}


def _tool_choice(choice: Any, drop: bool) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"auto": {}} if choice == "auto" else None
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"tool": {"name": choice["function"].get("name", "")}}
    if drop:
        return None
    raise bad(f"bedrock has no tool_choice {choice!r} (it takes auto, required or a named function); "
              "remove it, or set drop_params: true to drop it", "tool_choice", "unsupported_value")


def _format_tool(fmt: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``response_format`` as a tool the model is made to call: its input is the answer."""
    schema = fmt.get("json_schema") if fmt.get("type") == "json_schema" else None
    if isinstance(schema, dict):
        name = schema.get("name") or JSON_TOOL
        spec: dict[str, Any] = {"name": name}
        if schema.get("description"):
            spec["description"] = schema["description"]
        spec["inputSchema"] = {"json": schema.get("schema") or {"type": "object", "properties": {}}}
    else:
        name = JSON_TOOL
        spec = {"name": name, "inputSchema": {"json": {"type": "object", "additionalProperties": True,
                                                       "properties": {}}}}
    return {"toolSpec": spec}, name


# ---------------------------------------------------------------- messages


def convert_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages as Converse's ``system`` blocks and ``messages``: consecutive turns of one
    role merged (Converse wants user and assistant to alternate), tool results as ``toolResult``
    blocks of a user turn, tool calls as ``toolUse`` blocks."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        role = m.get("role")
        if role in ("system", "developer"):
            system += [{"text": t} for t in _texts(m.get("content"))]
            continue
        if role in ("tool", "function"):
            blocks = [_tool_result(m, i)]
            role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(m, i)
        elif role == "user":
            blocks = _user_blocks(m.get("content"), i)
        else:
            raise bad(f"messages[{i}] has a role bedrock does not know: {role!r}", "messages", "invalid_role")
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text" and p.get("text")]
    return []


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"text": t} for t in _texts(content)]
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append({"image": _image(part.get("image_url"), i)})
        else:
            raise bad(f"messages[{i}] has a content part of type {kind!r}, which bedrock's Converse API "
                      "is not given by this gateway (text and image_url are)", "messages", "unsupported_content")
    return blocks


def _image(value: Any, i: int) -> dict[str, Any]:
    url = value.get("url", "") if isinstance(value, dict) else str(value or "")
    if not url.startswith("data:"):
        raise bad(f"messages[{i}]: bedrock takes images as base64 data URLs (data:image/png;base64,...), "
                  "not links", "messages", "invalid_image_url")
    head, _, data = url[len("data:"):].partition(",")
    mime, _, encoding = head.partition(";")
    fmt = IMAGE_FORMATS.get(mime.removeprefix("image/").lower())
    if fmt is None or encoding != "base64" or not mime.startswith("image/"):
        raise bad(f"messages[{i}]: bedrock takes png, jpeg, gif or webp images, base64-encoded; got {head!r}",
                  "messages", "invalid_image_url")
    return {"format": fmt, "source": {"bytes": data}}


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"text": t} for t in _texts(m.get("content"))]
    for call in m.get("tool_calls") or ():
        fn = call.get("function") or {}
        args = fn.get("arguments") or "{}"
        try:
            parsed = _decode(args) if isinstance(args, str) else args
        except msgspec.DecodeError:
            raise bad(f"messages[{i}]: a tool call's arguments are not valid JSON", "messages",
                      "invalid_tool_arguments") from None
        blocks.append({"toolUse": {"toolUseId": call.get("id", ""), "name": fn.get("name", ""), "input": parsed}})
    return blocks


def _tool_result(m: dict[str, Any], i: int) -> dict[str, Any]:
    call_id = m.get("tool_call_id") or m.get("name")
    if not call_id:
        raise bad(f"messages[{i}]: a tool message needs the tool_call_id it answers", "messages",
                  "missing_tool_call_id")
    text = "".join(_texts(m.get("content")))
    return {"toolResult": {"toolUseId": call_id, "content": [{"text": text}]}}
