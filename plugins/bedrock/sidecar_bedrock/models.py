"""Bedrock model ids: the route prefix, cross-region prefixes, and what each family accepts."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote

ROUTES = ("converse/", "invoke/")
"""LiteLLM's route prefixes after ``bedrock/``: ``bedrock/converse/<id>`` and ``bedrock/invoke/<id>``
are ``bedrock/<id>`` here (chat always goes through Converse, which serves every chat model)."""
REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
"""Cross-region inference profiles put a geography before the model id (``us.anthropic...``)."""

BASE_CHAT_PARAMS = ["max_tokens", "max_completion_tokens", "stream", "stream_options", "stop", "temperature",
                    "top_p", "response_format"]
EMBEDDING_PARAMS: list[str] = []  # (encoding_format: base64 is the core's)
_TOOLS = ("anthropic.", "mistral.", "cohere.command-r", "meta.llama3-1", "meta.llama3-2", "meta.llama3-3",
          "meta.llama4", "amazon.nova", "ai21.jamba", "writer.palmyra", "deepseek.", "openai.", "qwen.")
"""Families whose Converse API takes ``toolConfig`` (AWS's table of supported model features)."""
_TOOL_CHOICE = ("anthropic.", "mistral.mistral-large", "amazon.nova")
"""Families that take ``toolChoice`` any/tool (the API reference of ToolChoice)."""
_THINKING = re.compile(r"claude-3-7|claude-(?:opus|sonnet|haiku)-4")
"""Claude models that think (extended thinking, a ``budget_tokens``)."""


def upstream_id(model: str) -> str:
    """The model id to call: the route prefix removed, an inference profile's region kept."""
    for route in ROUTES:
        if model.startswith(route):
            return model[len(route):]
    return model


@lru_cache(maxsize=1024)
def base_model(model: str) -> str:
    """The foundation model an id names, without route, region prefix or ARN parts."""
    model = upstream_id(model)
    if model.startswith("arn:"):
        model = model.rsplit("/", 1)[-1]
    for prefix in REGION_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix):]
    return model


def model_path(model: str, action: str) -> str:
    """``/model/{modelId}/{action}`` with the id percent-encoded as AWS encodes a URI label
    (``:`` and ``/`` of versions and ARNs included)."""
    return f"/model/{quote(upstream_id(model), safe='')}/{action}"


def is_embedding(model: str) -> bool:
    base = base_model(model)
    return base.startswith(("amazon.titan-embed", "cohere.embed"))


def is_titan_embedding(model: str) -> bool:
    return base_model(model).startswith("amazon.titan-embed")


def thinks(model: str) -> bool:
    """Whether ``reasoning_effort`` maps to a thinking budget for this model."""
    base = base_model(model)
    return base.startswith("anthropic.") and bool(_THINKING.search(base))


def takes_tools(model: str) -> bool:
    return base_model(model).startswith(_TOOLS)


def takes_tool_choice(model: str) -> bool:
    return base_model(model).startswith(_TOOL_CHOICE)


@lru_cache(maxsize=1024)
def supported_params(model: str, capability: str | None = None) -> tuple[str, ...]:
    """The OpenAI params a model accepts for ``capability`` (LiteLLM's list for Converse, per
    family); without one, those of the model's own kind (embedding or chat)."""
    if capability == "embedding" or (capability is None and is_embedding(model)):
        if base_model(model).startswith("amazon.titan-embed-text-v2"):
            return (*EMBEDDING_PARAMS, "dimensions")
        return tuple(EMBEDDING_PARAMS)
    params = list(BASE_CHAT_PARAMS)
    if takes_tools(model):
        params.append("tools")
    if takes_tool_choice(model):
        params.append("tool_choice")
    if thinks(model):
        params.append("reasoning_effort")
    return tuple(params)
