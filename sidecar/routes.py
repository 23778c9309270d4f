"""The whole HTTP API in one table. OpenAI routes are served with and without ``/v1``; the
deployment-based ones also under Azure OpenAI's ``/openai/deployments/{model}/...`` (what
``AzureOpenAI(azure_endpoint=<sidecar>)`` clients call), the path naming the model group."""

from __future__ import annotations

from aiohttp import web

from sidecar.handlers import health, info, management, media_api, openai_api, rerank, routes_list
from sidecar.routing import health as router_health

# (method, path, handler, also under /v1)
ROUTES = [
    ("GET", "/health/liveliness", health.liveliness, False),
    ("GET", "/health/liveness", health.liveliness, False),
    ("GET", "/health/readiness", health.readiness, False),
    ("GET", "/health", router_health.health, False),  # master key: the router's view of each deployment
    ("POST", "/chat/completions", openai_api.chat_completions, True),
    ("POST", "/completions", openai_api.completions, True),
    ("POST", "/embeddings", openai_api.embeddings, True),
    ("POST", "/moderations", openai_api.moderations, True),
    ("POST", "/images/generations", media_api.image_generations, True),
    ("POST", "/audio/speech", media_api.speech, True),
    ("POST", "/audio/transcriptions", media_api.transcriptions, True),
    ("POST", "/rerank", rerank.rerank, True),
    ("POST", "/v2/rerank", rerank.rerank, False),  # LiteLLM serves Cohere's v2 path too
    ("GET", "/models", info.list_models, True),
    ("GET", "/models/{model_id:.+}", info.retrieve_model, True),
    # model info (read by operators, coding agents and dashboards)
    ("GET", "/model/info", info.model_info, True),
    ("GET", "/model_group/info", info.model_group_info, False),
    ("GET", "/api/models", info.api_models, False),
    # runtime model management (persisted in SQLite)
    ("POST", "/model/new", management.model_new, False),
    ("POST", "/model/update", management.model_update, False),
    ("PATCH", "/model/{model_id}/update", management.model_patch, False),
    ("POST", "/model/delete", management.model_delete, False),
    ("GET", "/routes", routes_list.list_routes, False),  # master key: this table, as LiteLLM lists it
]


AZURE_PATHS = ("/chat/completions", "/completions", "/embeddings", "/images/generations", "/audio/speech",
               "/audio/transcriptions")
"""OpenAI paths an Azure OpenAI client sends to ``/openai/deployments/{model}<path>?api-version=``."""


def add_routes(app: web.Application) -> None:
    handlers = {}
    for method, path, handler, versioned in ROUTES:
        app.router.add_route(method, path, handler)
        if versioned:
            app.router.add_route(method, "/v1" + path, handler)
            handlers[path] = handler
    for path in AZURE_PATHS:
        app.router.add_post("/openai/deployments/{model}" + path, handlers[path])
