"""The whole HTTP API in one table. OpenAI routes are served with and without ``/v1``; the
deployment-based ones also under Azure OpenAI's ``/openai/deployments/{model}/...`` (what
``AzureOpenAI(azure_endpoint=<sidecar>)`` clients call), the path naming the model group.

Each row also says what ``GET /openapi.json`` (:mod:`sidecar.openapi`) documents of it: the
Struct its JSON body is read into, the Struct it answers with, its query parameters and the error
statuses it can answer. The document is generated from this table and the Structs, never written
by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sidecar import answers, rerank as rerank_wire, wire, wire_completions, wire_media
from sidecar.handlers import docs, health, info, management, media_api, openai_api, rerank, routes_list
from sidecar.provider import CAPABILITIES
from sidecar.routing import health as router_health

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter: its name, Python type (``str``, ``bool``, ``int``) and meaning."""

    name: str
    type: type
    description: str
    values: tuple[str, ...] = ()
    """The values it may take, when they are few."""


@dataclass(frozen=True, slots=True)
class Route:
    """One route, and what the API document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    versioned: bool = False
    """Also served under ``/v1`` (OpenAI's routes)."""
    body: type | None = None
    """The Struct a JSON request body is read into."""
    form: type | None = None
    """The Struct a ``multipart/form-data`` body's text fields are read into (its ``file`` aside)."""
    answer: Any = None
    """The Struct (or type) of a JSON 200 answer."""
    stream: type | None = None
    """The Struct of one server-sent event, when the request asks for ``stream: true``."""
    media: tuple[str, ...] = ()
    """Other media types a 200 answer may have (audio, text, HTML)."""
    query: tuple[Param, ...] = ()
    path_values: tuple[Param, ...] = ()
    """Path parameters that take one of a few values (the others are any string)."""
    errors: tuple[int, ...] = ()
    """Error statuses it can answer, besides 401 for a missing or wrong master key."""
    operation: str | None = None
    """The operationId: OpenAI's own for its routes, so generated clients match."""
    notes: str = ""
    """More than the summary says (the operation's description)."""
    if_free: bool = False
    """Served only when no plugin serves the same method and path."""


CALL_ERRORS = (400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504)
"""What a routed model call can answer: the client's mistakes, the upstream's failures (passed on
or mapped, :func:`sidecar.errors.client_status`), a plugin hook's failure (500)."""
CHANGE_ERRORS = (400, 404, 409, 413, 500, 503)
"""What a change to the deployments can answer (500: the provider's plugin, imported on demand,
is broken; 503: another worker holds the registry lock)."""
_TEAM = Param("team_id", str, "Only the models of this team (and those of no team).")

ROUTES = [
    Route("GET", "/health/liveliness", health.liveliness, "Liveness: the process answers", "Health", answer=str),
    Route("GET", "/health/liveness", health.liveliness, "Liveness (alias of /health/liveliness)", "Health",
          answer=str),
    Route("GET", "/health/readiness", health.readiness, "Readiness: the database is open and plugins loaded",
          "Health", answer=answers.Readiness, errors=(503,)),
    Route("GET", "/health", router_health.health, "Each deployment's health, from the router's state", "Health",
          answer=answers.HealthReport,
          query=(Param("probe", bool, "Make one minimal real call per deployment instead (10 s timeout)."),)),
    Route("POST", "/chat/completions", openai_api.chat_completions, "Create a chat completion", "OpenAI",
          versioned=True, body=wire.ChatCompletionRequest, answer=wire.ChatCompletion,
          stream=wire.ChatCompletionChunk, errors=CALL_ERRORS, operation="createChatCompletion",
          notes="`model` may name several groups, comma-separated (LiteLLM's batch completions): the answer is "
                "then a JSON array with each group's completion or error, in order."),
    Route("POST", "/completions", openai_api.completions, "Create a text completion (legacy)", "OpenAI",
          versioned=True, body=wire_completions.TextCompletionRequest, answer=wire_completions.TextCompletion,
          stream=wire_completions.TextCompletionChunk, errors=CALL_ERRORS, operation="createCompletion"),
    Route("POST", "/embeddings", openai_api.embeddings, "Create embeddings", "OpenAI", versioned=True,
          body=wire.EmbeddingRequest, answer=wire.EmbeddingResponse, errors=CALL_ERRORS,
          operation="createEmbedding"),
    Route("POST", "/moderations", openai_api.moderations, "Classify text as potentially harmful", "OpenAI",
          versioned=True, body=wire.ModerationRequest, answer=wire.ModerationResponse, errors=CALL_ERRORS,
          operation="createModeration"),
    Route("POST", "/images/generations", media_api.image_generations, "Create images from a prompt", "OpenAI",
          versioned=True, body=wire_media.ImageGenerationRequest, answer=wire_media.ImagesResponse,
          media=("text/event-stream",), errors=CALL_ERRORS, operation="createImage"),
    Route("POST", "/audio/speech", media_api.speech, "Generate speech audio from text", "OpenAI", versioned=True,
          body=wire_media.SpeechRequest, media=("audio/*", "application/octet-stream", "text/event-stream"),
          errors=CALL_ERRORS, operation="createSpeech"),
    Route("POST", "/audio/transcriptions", media_api.transcriptions, "Transcribe audio into text", "OpenAI",
          versioned=True, form=wire_media.TranscriptionRequest, answer=wire_media.TranscriptionResponse,
          media=("text/plain", "text/event-stream"), errors=CALL_ERRORS, operation="createTranscription"),
    Route("POST", "/rerank", rerank.rerank, "Rerank documents by relevance to a query (Cohere's API)", "Rerank",
          versioned=True, body=rerank_wire.RerankRequest, answer=rerank_wire.RerankResponse, errors=CALL_ERRORS,
          operation="rerank"),
    Route("POST", "/v2/rerank", rerank.rerank, "Rerank (Cohere's v2 path, as LiteLLM serves it)", "Rerank",
          body=rerank_wire.RerankRequest, answer=rerank_wire.RerankResponse, errors=CALL_ERRORS),
    Route("GET", "/models", info.list_models, "List the models served", "OpenAI", versioned=True,
          answer=wire.ModelList, operation="listModels", query=(
              _TEAM, Param("return_wildcard_routes", bool, "Add wildcard patterns (`anthropic/*`) themselves."),
              Param("include_model_access_groups", bool, "Add the names of access groups."),
              Param("only_model_access_groups", bool, "List the names of access groups alone."))),
    Route("GET", "/models/{model_id:.+}", info.retrieve_model, "Retrieve a model served", "OpenAI", versioned=True,
          answer=wire.ModelCard, errors=(404,), operation="retrieveModel"),
    # model info (read by operators, coding agents and dashboards)
    Route("GET", "/model/info", info.model_info, "Every deployment and its model info, without credentials",
          "Model info", versioned=True, answer=answers.ModelInfoList, errors=(404,),
          query=(Param("litellm_model_id", str, "Only this deployment."),)),
    Route("GET", "/model_group/info", info.model_group_info, "Every model group, its deployments combined",
          "Model info", answer=answers.ModelGroupList,
          query=(Param("model_group", str, "Only this group (or a name a wildcard group serves)."),)),
    Route("GET", "/api/models", info.api_models, "Models in vLLora's shape, prices per million tokens",
          "Model info", answer=answers.ApiModelList, errors=(400,),
          query=(Param("provider", str, "Only this provider's models."),
                 Param("capability", str, "Only models with this capability.", values=CAPABILITIES))),
    # runtime model management (persisted in SQLite)
    Route("POST", "/model/new", management.model_new, "Add a deployment", "Model management",
          body=management.NewDeployment, answer=answers.ModelInfoRow, errors=CHANGE_ERRORS),
    Route("POST", "/model/update", management.model_update, "Replace a deployment (its id in model_info.id)",
          "Model management", body=management.ReplaceDeployment, answer=answers.ModelInfoRow, errors=CHANGE_ERRORS),
    Route("PATCH", "/model/{model_id}/update", management.model_patch,
          "Change a deployment's fields (params and info merge key by key)", "Model management",
          body=management.UpdateDeployment, answer=answers.ModelInfoRow, errors=CHANGE_ERRORS),
    Route("POST", "/model/delete", management.model_delete, "Delete a deployment", "Model management",
          body=management.DeleteDeployment, answer=answers.DeletedDeployment, errors=CHANGE_ERRORS),
    Route("GET", "/routes", routes_list.list_routes, "Every route and its methods", "Docs",
          answer=answers.RouteList),
    # this API's own description (sidecar.openapi), and Swagger UI from a packaged copy
    Route("GET", "/openapi.json", docs.openapi_json, "This API's OpenAPI 3.1 document", "Docs", answer=dict),
    Route("GET", "/docs", docs.swagger_ui, "Interactive API docs (Swagger UI)", "Docs", media=("text/html",)),
    Route("GET", "/docs/{asset}", docs.swagger_asset, "Swagger UI's scripts and styles", "Docs",
          media=("text/javascript", "text/css", "image/png"), errors=(404,),
          path_values=(Param("asset", str, "A file of the page.", values=tuple(docs.ASSETS)),)),
    Route("GET", "/", docs.swagger_ui, "Interactive API docs (unless a plugin serves /)", "Docs",
          media=("text/html",), if_free=True),
]


AZURE_PATHS = ("/chat/completions", "/completions", "/embeddings", "/images/generations", "/audio/speech",
               "/audio/transcriptions")
"""OpenAI paths an Azure OpenAI client sends to ``/openai/deployments/{model}<path>?api-version=``."""
AZURE_PREFIX = "/openai/deployments/{model}"


def served_paths(route: Route) -> list[tuple[str, str]]:
    """``(kind, path)`` for each path ``route`` is served under: ``""`` as written, ``"v1"``,
    ``"azure"``."""
    out = [("", route.path)]
    if route.versioned:
        out.append(("v1", "/v1" + route.path))
        if route.path in AZURE_PATHS:
            out.append(("azure", AZURE_PREFIX + route.path))
    return out


def add_routes(app: web.Application) -> None:
    """Every route of the table but those served only when free (:func:`add_free_routes`)."""
    for route in ROUTES:
        if not route.if_free:
            for _, path in served_paths(route):
                app.router.add_route(route.method, path, route.handler)


def add_free_routes(app: web.Application, taken: Callable[[str, str], bool]) -> None:
    """After plugins' routes: the ``if_free`` routes no plugin took (``/`` is the docs page unless
    a plugin serves something there)."""
    for route in ROUTES:
        if route.if_free and not taken(route.method, route.path):
            app.router.add_route(route.method, route.path, route.handler)
