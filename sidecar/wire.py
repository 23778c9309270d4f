"""msgspec Structs for OpenAI's wire format.

Requests are decoded twice over: once into a plain dict (what goes upstream, so provider-specific
keys survive untouched) and once, by :func:`msgspec.convert`, into these Structs, which check
types and give the 400 message. ``UNSET`` tells an absent field from an explicit null.

Responses are encoded with ``omit_defaults=True``: an optional field the spec does not let be
null is left out when it is None. A field that must always appear (required, or a constant such
as ``object``) is declared ``... | UnsetType = UNSET`` and filled in ``__post_init__``: a value
that differs from the default is always encoded, and ``__post_init__`` runs both when a provider
builds the Struct and when an upstream's JSON is decoded into it.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "Delta",
    "Embedding",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "FunctionCall",
    "MODERATION_CATEGORIES",
    "ModerationRequest",
    "ModerationResponse",
    "ModerationResult",
    "OPENAI_CHAT_PARAMS",
    "OPENAI_EMBEDDING_PARAMS",
    "ResponseMessage",
    "ToolCall",
    "Usage",
    "normalise_finish_reason",
    "raw_vector",
]

Json = dict[str, Any]


def token_inputs(inner_min: int) -> Meta:
    """The list forms of OpenAI's text input (``prompt``, embeddings' ``input``): strings, a
    token array, or token arrays (each of at least ``inner_min`` tokens). msgspec cannot take a
    union of list types, so the Struct's check enforces the forms and this documents them."""
    return Meta(min_length=1, extra_json_schema={"anyOf": [
        {"items": {"type": "string"}}, {"items": {"type": "integer"}},
        {"items": {"type": "array", "items": {"type": "integer"}, "minItems": inner_min}}]})


# ---------------------------------------------------------------- requests


class ChatMessage(Struct):
    """A message as clients send it; its other keys go upstream unchanged."""

    role: str
    content: str | list[Json] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[Json] | None = None
    tool_call_id: str | UnsetType = UNSET


class StreamOptions(Struct):
    include_usage: bool = False


class ChatCompletionRequest(Struct):
    """The OpenAI chat request, plus LiteLLM's gateway-only keys."""

    model: str
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    stream: bool | None | UnsetType = UNSET
    stream_options: StreamOptions | None | UnsetType = UNSET
    temperature: float | None | UnsetType = UNSET
    top_p: float | None | UnsetType = UNSET
    n: int | None | UnsetType = UNSET
    max_tokens: int | None | UnsetType = UNSET
    max_completion_tokens: int | None | UnsetType = UNSET
    stop: str | list[str] | None | UnsetType = UNSET
    presence_penalty: float | None | UnsetType = UNSET
    frequency_penalty: float | None | UnsetType = UNSET
    logit_bias: dict[str, float] | None | UnsetType = UNSET
    logprobs: bool | None | UnsetType = UNSET
    top_logprobs: int | None | UnsetType = UNSET
    seed: int | None | UnsetType = UNSET
    tools: list[Json] | None | UnsetType = UNSET
    tool_choice: str | Json | None | UnsetType = UNSET
    parallel_tool_calls: bool | None | UnsetType = UNSET
    response_format: Json | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET
    functions: list[Json] | None | UnsetType = UNSET
    function_call: str | Json | None | UnsetType = UNSET
    # gateway-only keys: read here, never forwarded
    metadata: Json | None | UnsetType = UNSET
    drop_params: bool | None | UnsetType = UNSET
    mock_response: Any = UNSET


class EmbeddingRequest(Struct):
    model: str
    input: str | Annotated[list[Any], token_inputs(1)]
    encoding_format: Literal["float", "base64"] | None | UnsetType = UNSET
    dimensions: int | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET
    metadata: Json | None | UnsetType = UNSET
    drop_params: bool | None | UnsetType = UNSET
    mock_response: Any = UNSET

    def __post_init__(self) -> None:
        check_embedding_input(self.input)


def check_embedding_input(value: str | list[Any]) -> None:
    """OpenAI's four input forms: a string, strings, a token array, token arrays (not empty:
    the Struct's type says so)."""
    if isinstance(value, str):
        return
    first = value[0]
    kind = (str,) if isinstance(first, str) else (int,) if isinstance(first, int) else (list,)
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise ValueError("Expected a string, an array of strings, an array of integers or an array of integer arrays - at `$.input`")
    if kind == (list,) and not all(v and all(isinstance(t, int) and not isinstance(t, bool) for t in v) for v in value):
        raise ValueError("Expected an array of non-empty integer arrays - at `$.input`")


class ModerationRequest(Struct):
    input: str | Annotated[list[Any], Meta(min_length=1)]
    model: str | UnsetType = UNSET
    metadata: Json | None | UnsetType = UNSET
    mock_response: Any = UNSET


GATEWAY_KEYS = frozenset({
    "metadata", "drop_params", "mock_response", "user_config",
    # the router's (sidecar.routing.policy.ROUTER_BODY_KEYS)
    "num_retries", "timeout", "request_timeout", "fallbacks", "disable_fallbacks", "fastest_response",
    "mock_testing_fallbacks", "mock_testing_context_window_fallbacks", "mock_testing_content_policy_fallbacks",
})
"""Body keys the gateway consumes; they never go upstream."""

CREDENTIAL_BODY_KEYS = frozenset(
    {"api_key", "api_base", "base_url", "api_version", "organization", "azure_ad_token",
     "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name", "aws_profile_name",
     "aws_role_name", "aws_session_name", "aws_external_id", "aws_web_identity_token", "aws_sts_endpoint",
     "vertex_credentials", "vertex_project", "vertex_location", "extra_headers"}
)
"""Body keys that would point the request at other credentials or servers."""

OPENAI_CHAT_PARAMS = frozenset(
    {"frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
     "max_completion_tokens", "n", "presence_penalty", "seed", "stop", "stream",
     "stream_options", "temperature", "top_p", "tools", "tool_choice", "function_call",
     "functions", "parallel_tool_calls", "response_format", "user", "modalities", "audio",
     "prediction", "reasoning_effort", "service_tier", "store", "web_search_options",
     "verbosity", "safety_identifier", "prompt_cache_key", "prompt_cache_retention"}
)
"""Optional chat params defined by OpenAI's API: checked against the provider's list."""

OPENAI_EMBEDDING_PARAMS = frozenset({"encoding_format", "dimensions", "user"})


# ---------------------------------------------------------------- responses


def _stamp(obj: Any, object_name: str) -> None:
    """Fill ``created`` and ``object`` where a provider or upstream left them out."""
    if obj.created is UNSET:
        obj.created = int(time.time())
    if obj.object is UNSET:
        obj.object = object_name


class FunctionCall(Struct, omit_defaults=True):
    name: str | None = None
    arguments: str | None = None


class ToolCall(Struct, omit_defaults=True):
    """A function tool call, or OpenAI's custom tool call (``type: "custom"``, ``custom: {name, input}``)."""

    id: str = ""
    function: FunctionCall | None = None
    type: str | UnsetType = UNSET
    custom: Json | None = None

    def __post_init__(self) -> None:
        if not self.id:  # some servers (Ollama, older vLLM) send none; the spec requires one, as
            self.id = f"call_{uuid.uuid4()}"  # clients need it to answer the call: LiteLLM makes one too
        if self.type is UNSET:
            self.type = "custom" if self.function is None and self.custom is not None else "function"


class ResponseMessage(Struct, omit_defaults=True):
    content: str | None | UnsetType = UNSET
    refusal: str | None | UnsetType = UNSET
    role: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    annotations: list[Json] | None = None
    audio: Json | None = None
    reasoning_content: str | None = None
    reasoning: Any = None  # a string at most providers, an object at some
    thinking_blocks: list[Json] | None = None  # Anthropic's signed thinking, as LiteLLM returns it

    def __post_init__(self) -> None:
        if self.content is UNSET:
            self.content = None
        if self.refusal is UNSET:
            self.refusal = None
        if self.role is UNSET:
            self.role = "assistant"


FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_FINISH_ALIASES = {
    "eos": "stop", "eos_token": "stop", "stop_sequence": "stop", "end_turn": "stop",
    "max_tokens": "length", "model_length": "length", "tool_use": "tool_calls",
    "content_filtered": "content_filter",
}


def normalise_finish_reason(value: Any, missing: str | None) -> str | None:
    """A finish reason in OpenAI's enum: ``missing`` for null-ish values (some servers send ``""``),
    other servers' names (TGI's ``eos_token``...) mapped, anything unknown as ``stop``."""
    if value is UNSET or value is None or value == "":
        return missing
    if value in FINISH_REASONS:
        return value
    return _FINISH_ALIASES.get(str(value).lower(), "stop")


def normalise_logprobs(value: Any) -> Any:
    """The spec requires both ``content`` and ``refusal`` (vLLM sends ``content`` only)."""
    if isinstance(value, dict):
        value.setdefault("content", None)
        value.setdefault("refusal", None)
    return value


class Choice(Struct, omit_defaults=True):
    index: int
    message: ResponseMessage
    finish_reason: str | None | UnsetType = UNSET
    logprobs: Json | None | UnsetType = UNSET

    def __post_init__(self) -> None:  # (per answer: the common cases cost a test each, no call)
        logprobs = self.logprobs
        if logprobs is UNSET:
            self.logprobs = None
        elif logprobs is not None:
            normalise_logprobs(logprobs)
        if self.finish_reason not in FINISH_REASONS:  # some servers send null: the spec wants a reason
            self.finish_reason = normalise_finish_reason(self.finish_reason, "stop")


class Usage(Struct, omit_defaults=True):
    """Token counts: the three always sent, 0 included (OpenAI's spec requires them)."""

    prompt_tokens: int | UnsetType = UNSET
    completion_tokens: int | UnsetType = UNSET
    total_tokens: int | UnsetType = UNSET
    prompt_tokens_details: Json | None = None
    completion_tokens_details: Json | None = None

    def __post_init__(self) -> None:
        if self.prompt_tokens is UNSET:
            self.prompt_tokens = 0
        if self.completion_tokens is UNSET:
            self.completion_tokens = 0
        if self.total_tokens is UNSET:
            self.total_tokens = 0


class ChatCompletion(Struct, omit_defaults=True):
    id: str
    choices: list[Choice]
    model: str
    created: int | UnsetType = UNSET
    object: str | UnsetType = UNSET
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    citations: list[Any] | None = None  # Perplexity, kept as LiteLLM keeps them
    search_results: list[Any] | None = None

    def __post_init__(self) -> None:  # (_stamp, inlined: one call less per answer)
        if self.created is UNSET:
            self.created = int(time.time())
        if self.object is UNSET:
            self.object = "chat.completion"


class Delta(Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[Json] | None = None
    function_call: Json | None = None
    reasoning_content: str | None = None
    reasoning: Any = None  # a string at most providers, an object at some
    thinking_blocks: list[Json] | None = None  # Anthropic's signed thinking, as LiteLLM streams it


class ChunkChoice(Struct, omit_defaults=True):
    index: int
    delta: Delta | UnsetType = UNSET  # always set, but for Azure's content-filter annotations
    finish_reason: str | None | UnsetType = UNSET
    logprobs: Json | None = None

    def __post_init__(self) -> None:  # (per streamed chunk: the common cases cost one test each)
        reason = self.finish_reason
        if reason is not None and reason not in FINISH_REASONS:
            self.finish_reason = normalise_finish_reason(reason, None)
        if self.logprobs is not None:
            normalise_logprobs(self.logprobs)


class ChatCompletionChunk(Struct, omit_defaults=True):
    id: str
    choices: list[ChunkChoice]
    model: str
    created: int | UnsetType = UNSET
    object: str | UnsetType = UNSET
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    citations: list[Any] | None = None  # Perplexity, kept as LiteLLM keeps them
    search_results: list[Any] | None = None

    def __post_init__(self) -> None:  # (:func:`_stamp`, inline: it runs for every streamed chunk)
        if self.created is UNSET:
            self.created = int(time.time())
        if self.object is UNSET:
            self.object = "chat.completion.chunk"


class Embedding(Struct):
    """``embedding`` is the vector's JSON as it came (a float array, or a base64 string): it
    passes through undecoded, which halves the cost of relaying embeddings. Providers that
    compute vectors wrap them with :func:`raw_vector`."""

    index: int
    embedding: Annotated[msgspec.Raw, Meta(extra_json_schema={"anyOf": [
        {"type": "array", "items": {"type": "number"}},
        {"type": "string", "description": "`encoding_format: base64`: the float32s, little-endian, in base64"}]})]
    object: str = "embedding"


_vector_encoder = msgspec.json.Encoder()


def raw_vector(vector: list[float] | str) -> msgspec.Raw:
    """A computed vector (floats, or base64 text) as the JSON an :class:`Embedding` holds."""
    return msgspec.Raw(_vector_encoder.encode(vector))


_floats = msgspec.json.Decoder(list[float] | str)


def encode_base64(answer: EmbeddingResponse) -> EmbeddingResponse:
    """``answer`` with its float vectors as OpenAI's ``encoding_format: "base64"`` gives them:
    the vector's little-endian float32 bytes in base64 (a vector already a string is kept)."""
    import array
    import base64
    import sys

    for item in answer.data:
        vector = item.embedding
        floats = _floats.decode(vector) if isinstance(vector, msgspec.Raw) else vector
        if isinstance(floats, str):
            continue
        packed = array.array("f", floats)
        if sys.byteorder == "big":
            packed.byteswap()
        item.embedding = raw_vector(base64.b64encode(packed.tobytes()).decode("ascii"))
    return answer


class EmbeddingUsage(Struct):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage = msgspec.field(default_factory=EmbeddingUsage)
    object: str = "list"


MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)


class ModerationResult(Struct):
    flagged: bool
    categories: dict[str, bool | None]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Older upstreams omit the newer categories; the spec requires every one."""
        for name in MODERATION_CATEGORIES:
            self.categories.setdefault(name, None if name.startswith("illicit") else False)
            self.category_scores.setdefault(name, 0.0)
            self.category_applied_input_types.setdefault(name, ["text"])


class ModerationResponse(Struct):
    id: str
    model: str
    results: list[ModerationResult]


class ModelCard(Struct):
    id: str
    created: int
    owned_by: str
    object: str = "model"


class ModelList(Struct):
    data: list[ModelCard]
    object: str = "list"
