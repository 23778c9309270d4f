"""The ``anthropic`` provider, and :func:`messages_chat`: one chat over the Messages API at a
given URL with given headers, which other hosts of Claude (Azure AI Foundry's ``azure_ai/claude-*``,
later Vertex AI) reuse with their own URL and credentials."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from functools import lru_cache
from typing import Any

import aiohttp
import msgspec
import yarl

from sidecar import (
    ApiAccess,
    ChatCompletion,
    ChatCompletionChunk,
    Provider,
    ProviderCall,
    ProviderError,
    connection_error,
    open_stream,
    post_json,
    timeout_for,
)
from sidecar_anthropic.answer import Message, completion_of
from sidecar_anthropic.convert import API_VERSION, CHAT_PARAMS, REASONING_PARAMS, build_request
from sidecar_anthropic.errors import error_from_answer
from sidecar_anthropic.stream import StreamState, chunks_of

DEFAULT_API_BASE = "https://api.anthropic.com"
ACCESS = ApiAccess("anthropic", key_envs=("ANTHROPIC_API_KEY",), base_envs=("ANTHROPIC_API_BASE",),
                   default_base=DEFAULT_API_BASE, key_header="x-api-key", key_prefix="")
_message = msgspec.json.Decoder(Message)
_encode = msgspec.json.Encoder().encode


class _ModelList(msgspec.Struct):
    data: list[dict[str, Any]] = []


_models = msgspec.json.Decoder(_ModelList)


def supported_params(model: str, provider: str) -> list[str]:
    """OpenAI params accepted for a Claude ``model``: ``reasoning_effort`` unless the catalog
    knows the model and that it does not think."""
    from sidecar import catalog_lookup

    info = catalog_lookup(model, provider) or catalog_lookup(model, "anthropic")
    thinks = info is None or bool(info.get("supports_reasoning"))
    return CHAT_PARAMS + REASONING_PARAMS if thinks else list(CHAT_PARAMS)


@lru_cache(maxsize=1024)
def default_max_tokens(model: str, provider: str) -> int | None:
    """The model's max output tokens from the catalog (``max_tokens`` is required by the API)."""
    from sidecar import catalog_lookup

    info = catalog_lookup(model, provider) or catalog_lookup(model, "anthropic") or {}
    value = info.get("max_output_tokens") or info.get("max_tokens")
    return int(value) if value else None


async def messages_chat(call: ProviderCall, url: str | yarl.URL, headers: Mapping[str, str], provider: str,
                        adapt: Callable[[dict[str, Any]], None] | None = None,
                        ) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
    """Serve ``call`` over the Messages API at ``url`` (headers carry the credentials).
    ``adapt`` may change the body in place before it is sent (a host's own keys: Vertex AI
    takes ``anthropic_version`` in the body and the model in the URL)."""
    body, json_mode = build_request(call.body, call.model, call.params, stream=call.stream,
                                    default_max_tokens=default_max_tokens(call.model, provider))
    if adapt is not None:
        adapt(body)
    data = _encode(body)
    if not call.stream:
        message = await post_json(call.session, url, data, headers, timeout_for(call.params, False), _message,
                                  provider, parse_error=error_from_answer)
        return completion_of(message, call.model, json_mode)
    resp = await open_stream(call.session, url, data, headers, timeout_for(call.params, True), provider,
                             parse_error=error_from_answer)
    return _relay(resp, StreamState(call.model, json_mode, provider), provider)


async def _relay(resp: aiohttp.ClientResponse, state: StreamState, provider: str) -> AsyncIterator[list[Any]]:
    # aclosing: a client that leaves closes this generator, and so the upstream response at once
    async with aclosing(chunks_of(resp, state, provider)) as chunks:
        async for batch in chunks:
            yield batch


def extra_headers(params: Mapping[str, Any]) -> dict[str, str]:
    """``litellm_params.extra_headers`` (``anthropic-beta``...), as strings."""
    extra = params.get("extra_headers")
    return {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}


@lru_cache(maxsize=1024)
def messages_url(base: str) -> yarl.URL:
    """``{api_base}/v1/messages``; an ``api_base`` ending in ``/v1`` or ``/v1/messages`` is not doubled."""
    base = base.rstrip("/")
    if not base.endswith("/v1/messages"):
        base = f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
    try:
        url = yarl.URL(base)
        url.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        url = None
    if url is None or not url.host:
        raise ProviderError(400, "litellm_params.api_base is not a valid URL", param="api_base",
                            code="invalid_api_base")
    return url


class AnthropicProvider(Provider):
    """``anthropic/<model>``: Anthropic's Messages API."""

    name = "anthropic"
    capabilities = frozenset({"chat"})
    description = "Anthropic's Messages API (Claude)"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        return supported_params(model, self.name)

    def _base(self, params: Mapping[str, Any]) -> str:
        return str(ACCESS.base(params))

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        return ACCESS.ambient(params)

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        return ACCESS.headers(params, {"anthropic-version": API_VERSION})

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        return await messages_chat(call, messages_url(self._base(call.params)), self.headers(call.params), self.name)

    async def list_models(self, params: Mapping[str, Any], session: aiohttp.ClientSession) -> list[str]:
        """``GET /v1/models`` (the first 1000)."""
        url = (messages_url(self._base(params)).parent / "models").with_query(limit=1000)
        try:
            async with session.get(url, headers=self.headers(params), timeout=timeout_for(params, False)) as resp:
                data = await resp.read()
                if resp.status >= 400:
                    raise error_from_answer(resp.status, data, self.name, resp.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise connection_error(exc, self.name) from None
        return sorted(str(m["id"]) for m in _models.decode(data).data if "id" in m)
