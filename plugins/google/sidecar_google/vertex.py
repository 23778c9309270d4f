"""``vertex_ai/<model>``: Gemini on Vertex AI, signed in with a bearer token from google-auth.

``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
publishers/google/models/{model}:{method}`` (location ``global``: host ``aiplatform.googleapis.com``);
``api_base`` replaces the scheme and host. ``vertex_project`` (else ``$VERTEXAI_PROJECT``, else the
credential's project), ``vertex_location`` (else ``$VERTEXAI_LOCATION``, else ``us-central1``),
``vertex_credentials`` (else the application default credentials). Gemini models chat through
``generateContent``; text-embedding models embed through ``:predict``; ``claude-*`` models are
Claude on Vertex, served by :func:`claude_call`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec
import yarl

from sidecar import NO_AMBIENT_CREDENTIALS, ChatCompletion, EmbeddingResponse, ProviderCall, ProviderError
from sidecar_google.auth import TokenCache
from sidecar_google.provider import GoogleProvider, parse_url

DEFAULT_LOCATION = "us-central1"
ANTHROPIC_VERSION = "vertex-2023-10-16"
CLAUDE_PARAMS = ["max_tokens", "max_completion_tokens", "stream", "stream_options", "temperature", "top_p", "stop",
                 "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "user"]


class _Statistics(msgspec.Struct):
    token_count: int = 0


class _Values(msgspec.Struct):
    values: list[float] = []
    statistics: _Statistics = msgspec.field(default_factory=_Statistics)


class _Prediction(msgspec.Struct):
    embeddings: _Values


class _Predictions(msgspec.Struct):
    predictions: list[_Prediction] = []


_predictions = msgspec.json.Decoder(_Predictions)
_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=1024)
def model_url(base: str | None, project: str, location: str, publisher: str, model: str, method: str) -> yarl.URL:
    """The Vertex AI URL of ``method`` for a publisher's model."""
    if base:
        root = parse_url(base).human_repr().rstrip("/")
    else:
        root = "https://aiplatform.googleapis.com" if location == "global" else \
            f"https://{location}-aiplatform.googleapis.com"
    return yarl.URL(f"{root}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/"
                    f"{model}:{method}")


def is_claude(model: str) -> bool:
    return model.startswith("claude")


class VertexProvider(GoogleProvider):
    name = "vertex_ai"
    description = "Google Vertex AI: Gemini (generateContent), text embeddings (predict), Claude (rawPredict)"

    def __init__(self) -> None:
        self.tokens = TokenCache()  # (a plain dict: no event-loop objects before the workers fork)

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        if is_claude(model) and capability in (None, "chat"):
            return list(CLAUDE_PARAMS)
        return super().supported_openai_params(model, capability)

    def secret_params(self) -> frozenset[str]:
        return frozenset({"vertex_credentials"})

    # ---------------------------------------------------------------- where and who

    def location(self, params: Mapping[str, Any]) -> str:
        env = None if params.get(NO_AMBIENT_CREDENTIALS) else os.environ.get("VERTEXAI_LOCATION")
        return str(params.get("vertex_location") or env or DEFAULT_LOCATION)

    async def endpoint(self, call: ProviderCall, method: str, publisher: str = "google") -> tuple[yarl.URL, dict[str, str]]:
        params = call.params
        ambient = not params.get(NO_AMBIENT_CREDENTIALS)
        credentials = params.get("vertex_credentials")
        if not credentials and not ambient:  # the client's own api_base gets no default credentials
            raise ProviderError(401, "vertex_ai sends application default credentials only to Google's own "
                                     "endpoint: send vertex_credentials with api_base", kind="auth",
                                param="vertex_credentials", code="missing_vertex_credentials")
        token, own_project = await self.tokens.token(credentials)
        project = params.get("vertex_project") or (os.environ.get("VERTEXAI_PROJECT") if ambient else None) \
            or own_project
        if not project:
            raise ProviderError(400, "vertex_ai needs a project: litellm_params.vertex_project or "
                                     "$VERTEXAI_PROJECT", param="vertex_project", code="missing_vertex_project")
        base = params.get("api_base") or params.get("base_url")
        url = model_url(str(base) if base else None, str(project), self.location(params), publisher, call.model,
                        method)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        extra = params.get("extra_headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        return url, headers

    # ---------------------------------------------------------------- capabilities

    async def chat(self, call: ProviderCall) -> Any:
        if is_claude(call.model):
            return await claude_call(self, call)
        return await super().chat(call)

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        """Vertex's text-embedding models: ``:predict`` with one instance per input."""
        instances: list[dict[str, Any]] = [{"content": t} for t in self.embedding_texts(call)]
        task = call.body.get("task_type") or call.params.get("task_type")
        if task:
            for instance in instances:
                instance["task_type"] = task
        body: dict[str, Any] = {"instances": instances}
        if call.body.get("dimensions") is not None:
            body["parameters"] = {"outputDimensionality": call.body["dimensions"]}
        url, headers = await self.endpoint(call, "predict")
        answer = await self.post(call, url, _encode(body), headers, _predictions)
        if len(answer.predictions) != len(instances):
            raise ProviderError(502, f"vertex_ai upstream answered {len(answer.predictions)} embeddings for "
                                     f"{len(instances)} inputs", code="bad_upstream_response")
        tokens = sum(p.embeddings.statistics.token_count for p in answer.predictions)
        return self.embedding_response(call, [p.embeddings.values for p in answer.predictions], tokens)


async def claude_call(provider: VertexProvider, call: ProviderCall) -> ChatCompletion | Any:
    """``vertex_ai/claude-*``: Anthropic's Messages API at ``:rawPredict`` (``:streamRawPredict``)
    of the ``anthropic`` publisher. This builds the URL and the bearer token; the body and the
    answer are the anthropic plugin's (``sidecar_anthropic``), with ``anthropic_version``
    ``vertex-2023-10-16`` in the body. Without that plugin: a 400 naming it."""
    try:
        import sidecar_anthropic
    except ImportError:
        raise ProviderError(400, f"vertex_ai/{call.model} is Claude on Vertex AI, which needs the anthropic "
                                 "plugin (module sidecar_anthropic); it is not installed", param="model",
                            code="missing_plugin") from None
    url, headers = await provider.endpoint(call, "streamRawPredict" if call.stream else "rawPredict",
                                           publisher="anthropic")

    def for_vertex(body: dict[str, Any]) -> None:
        body.pop("model", None)  # (in the URL)
        body["anthropic_version"] = ANTHROPIC_VERSION

    return await sidecar_anthropic.messages_chat(call, url, headers, provider.name, adapt=for_vertex)
