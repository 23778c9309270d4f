"""The whole HTTP API in one table. OpenAI routes are served with and without ``/v1``."""

from __future__ import annotations

from aiohttp import web

from sidecar.handlers import health, openai_api

# (method, path, handler, also under /v1)
ROUTES = [
    ("GET", "/health/liveliness", health.liveliness, False),
    ("GET", "/health/liveness", health.liveliness, False),
    ("GET", "/health/readiness", health.readiness, False),
    ("POST", "/chat/completions", openai_api.chat_completions, True),
    ("POST", "/embeddings", openai_api.embeddings, True),
    ("POST", "/moderations", openai_api.moderations, True),
    ("GET", "/models", openai_api.list_models, True),
]


def add_routes(app: web.Application) -> None:
    for method, path, handler, versioned in ROUTES:
        app.router.add_route(method, path, handler)
        if versioned:
            app.router.add_route(method, "/v1" + path, handler)
