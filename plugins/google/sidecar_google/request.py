"""An OpenAI chat request as Gemini's ``GenerateContentRequest`` (the Gemini API and Vertex AI
take the same body): ``contents``, ``systemInstruction``, ``tools``, ``toolConfig``,
``generationConfig`` and ``safetySettings``."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any

from sidecar import ProviderError, tool_arguments
from sidecar_google.schema import gemini_schema

THOUGHT_SEPARATOR = "__thought__"
"""A tool call's id carries its part's ``thoughtSignature`` after this (as LiteLLM encodes it), so
the signature goes back with the call when the client sends the conversation again."""

EFFORT_BUDGETS = {"none": 0, "disable": 0, "minimal": 128, "low": 1024, "medium": 2048, "high": 4096}
"""``reasoning_effort`` as LiteLLM maps it to ``thinkingConfig.thinkingBudget``."""
_EFFORT_LEVELS = {"minimal": "low", "low": "low", "medium": "high", "high": "high"}
"""Gemini 3 models take ``thinkingLevel`` (low or high) instead of a budget."""

_CONFIG_KEYS = {"top_k": "topK", "topK": "topK", "response_modalities": "responseModalities",
                "responseModalities": "responseModalities", "media_resolution": "mediaResolution",
                "mediaResolution": "mediaResolution"}
"""Gemini's own ``generationConfig`` keys a client may send (``extra_body``) or a deployment set."""
_BODY_KEYS = {"safety_settings": "safetySettings", "safetySettings": "safetySettings",
              "cached_content": "cachedContent", "cachedContent": "cachedContent", "labels": "labels"}
"""Gemini's own top-level request keys, from the request or ``litellm_params``."""
_CONSUMED = frozenset({"model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
                       "max_completion_tokens", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
                       "response_format", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
                       "functions", "function_call"})


def gemini_body(body: Mapping[str, Any], params: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The request body for ``model`` from the OpenAI ``body`` and the deployment's ``params``
    (a configured ``extra_body`` gives defaults, as LiteLLM merges it)."""
    extra = params.get("extra_body")
    if isinstance(extra, dict):
        params = {**params, **extra}
    system, contents = convert_messages(body["messages"])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = function_declarations(body)
    choice = body.get("tool_choice", body.get("function_call"))
    if tools:
        out["tools"] = [{"functionDeclarations": tools}]
        config = tool_config(choice)
        if config:
            out["toolConfig"] = {"functionCallingConfig": config}
    elif choice not in (None, "none", "auto"):
        raise ProviderError(400, "`tool_choice` names a tool but the request has no `tools`", param="tool_choice",
                            code="invalid_tool_choice")
    if body.get("parallel_tool_calls") is False:
        raise ProviderError(400, "gemini cannot be told not to call tools in parallel (`parallel_tool_calls: "
                                 "false`); remove it, or set drop_params: true", param="parallel_tool_calls",
                            code="unsupported_params")
    config = generation_config(body, params, model)
    if config:
        out["generationConfig"] = config
    for source in (params, body):
        for key, name in _BODY_KEYS.items():
            if source.get(key) is not None:
                out[name] = source[key]
    return out


# ---------------------------------------------------------------- messages


def convert_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(``systemInstruction`` parts, ``contents``): system and developer messages go to the
    system instruction, assistant turns are ``model``, tool results ``user`` turns of
    ``functionResponse`` parts; consecutive turns of one role are merged, as Gemini wants."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            system += [p for p in _parts(m.get("content"), "messages") if "text" in p]
            continue
        if role == "assistant":
            parts = _assistant_parts(m, call_names)
            turn = "model"
        elif role in ("tool", "function"):
            parts = [_function_response(m, call_names)]
            turn = "user"
        else:
            parts = _parts(m.get("content"), "messages")
            turn = "user"
        if not parts:
            continue
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"] += parts
        else:
            contents.append({"role": turn, "parts": parts})
    if not contents and system:  # Gemini needs contents: a lone system prompt is the user's turn
        contents, system = [{"role": "user", "parts": system}], []
    return system, contents


def _parts(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            if item.get("text"):
                parts.append({"text": item["text"]})
        elif kind == "image_url":
            url = item.get("image_url")
            parts.append(_media(url.get("url", "") if isinstance(url, dict) else str(url or ""), "image/jpeg"))
        elif kind == "input_audio":
            audio = item.get("input_audio") or {}
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}",
                                         "data": audio.get("data", "")}})
        elif kind == "file":
            file = item.get("file") or {}
            ref = file.get("file_data") or file.get("file_id") or ""
            parts.append(_media(ref, file.get("format") or "application/pdf"))
        else:
            raise ProviderError(400, f"gemini does not take message content of type {kind!r}", param=param,
                                code="unsupported_content")
    return parts


def _media(url: str, default_type: str) -> dict[str, Any]:
    """A data URL as ``inlineData``; an http(s) or ``gs://`` URL as ``fileData`` (the API fetches it)."""
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = head[5:].split(";", 1)[0] or default_type
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or default_type
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise ProviderError(400, "gemini takes images and files as data URLs (data:image/png;base64,...), "
                             "http(s) URLs or gs:// URIs", param="messages", code="invalid_image_url")


def _assistant_parts(m: dict[str, Any], call_names: dict[str, str]) -> list[dict[str, Any]]:
    parts = _parts(m.get("content"), "messages")
    calls = list(m.get("tool_calls") or [])
    if m.get("function_call"):
        calls.append({"id": "", "function": m["function_call"]})
    for call in calls:
        fn = call.get("function") or {}
        name = fn.get("name") or ""
        call_names[call.get("id") or name] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": tool_arguments(call)}}
        signature = (call.get("id") or "").partition(THOUGHT_SEPARATOR)[2]
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(m: dict[str, Any], call_names: dict[str, str]) -> dict[str, Any]:
    """A tool (or legacy function) result as a ``functionResponse`` named by its call."""
    name = call_names.get(m.get("tool_call_id") or "") or m.get("name")
    if not name:
        raise ProviderError(400, "a tool message's tool_call_id matches no tool call of an earlier assistant "
                                 "message (gemini needs the function's name)", param="messages",
                            code="invalid_tool_message")
    content = m.get("content")
    text = content if isinstance(content, str) else "".join(
        p.get("text", "") for p in content or () if isinstance(p, dict))
    return {"functionResponse": {"name": name, "response": {"content": text}}}


# ---------------------------------------------------------------- tools


def function_declarations(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = [t.get("function") if t.get("type") == "function" else _unsupported_tool(t)
             for t in body.get("tools") or ()]
    tools += list(body.get("functions") or ())
    out = []
    for fn in tools:
        decl: dict[str, Any] = {"name": fn.get("name", "")}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if params and (params.get("properties") or params.get("type") != "object"):
            decl["parameters"] = gemini_schema(params, "tools")
        out.append(decl)
    return out


def _unsupported_tool(tool: dict[str, Any]) -> dict[str, Any]:
    raise ProviderError(400, f"gemini takes function tools only, not {tool.get('type')!r} tools", param="tools",
                        code="unsupported_tool")


def tool_config(choice: Any) -> dict[str, Any] | None:
    """``tool_choice`` as ``functionCallingConfig``: auto, none, required (ANY), or one function."""
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if not name:
            raise ProviderError(400, "`tool_choice` must name a function", param="tool_choice",
                                code="invalid_tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
    if mode is None:
        raise ProviderError(400, f"`tool_choice` {choice!r} is not one of auto, none, required or a function",
                            param="tool_choice", code="invalid_tool_choice")
    return {"mode": mode}


# ---------------------------------------------------------------- generationConfig


def generation_config(body: Mapping[str, Any], params: Mapping[str, Any], model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source in (params, body):
        for key, name in _CONFIG_KEYS.items():
            if source.get(key) is not None:
                config[name] = source[key]
    for key, value in body.items():  # another provider-specific key: Gemini's to accept or refuse
        if key not in _CONSUMED and key not in _CONFIG_KEYS and key not in _BODY_KEYS and value is not None:
            config[key] = value
    simple = {"temperature": "temperature", "top_p": "topP", "n": "candidateCount", "seed": "seed",
              "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty",
              "max_tokens": "maxOutputTokens", "max_completion_tokens": "maxOutputTokens"}
    for key, name in simple.items():  # (max_completion_tokens after max_tokens: it wins)
        if body.get(key) is not None:
            config[name] = body[key]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        config.update(_response_format(fmt, model))
    effort = body.get("reasoning_effort")
    if effort is not None:
        config["thinkingConfig"] = thinking_config(str(effort), model)
    return config


def _response_format(fmt: dict[str, Any], model: str) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is None:
            return {"responseMimeType": "application/json"}
        if model_generation(model) >= 2:  # JSON Schema as it is, from Gemini 2.0 on
            return {"responseMimeType": "application/json", "responseJsonSchema": schema}
        return {"responseMimeType": "application/json", "responseSchema": gemini_schema(schema, "response_format")}
    raise ProviderError(400, f"gemini does not support response_format type {kind!r}", param="response_format",
                        code="unsupported_response_format")


def thinking_config(effort: str, model: str) -> dict[str, Any]:
    """``reasoning_effort`` as ``thinkingConfig``: a budget (LiteLLM's), or Gemini 3's level."""
    if effort not in EFFORT_BUDGETS:
        raise ProviderError(400, f"`reasoning_effort` {effort!r} is not one of "
                                 f"{', '.join(EFFORT_BUDGETS)}", param="reasoning_effort", code="invalid_value")
    if model_generation(model) >= 3:
        level = _EFFORT_LEVELS.get(effort)
        if level is None:
            raise ProviderError(400, f"{model} cannot turn thinking off (`reasoning_effort: {effort}`)",
                                param="reasoning_effort", code="unsupported_value")
        return {"thinkingLevel": level, "includeThoughts": True}
    budget = EFFORT_BUDGETS[effort]
    return {"thinkingBudget": budget, "includeThoughts": budget > 0}


def model_generation(model: str) -> float:
    """2.5 for ``gemini-2.5-flash``, 0 for a name that is not ``gemini-<n>...``."""
    head = model.rsplit("/", 1)[-1].removeprefix("gemini-").split("-", 1)[0]
    try:
        return float(head)
    except ValueError:
        return 0
