"""Health checks (no auth): liveliness says the process answers; readiness that it can serve."""

from __future__ import annotations

from aiohttp import web

from sidecar import __version__, keys
from sidecar.http import json_response
from sidecar.plugins import installed_plugins

NO_DEPLOYMENTS = "no deployments: add them to model_list or with POST /model/new"


async def liveliness(request: web.Request) -> web.Response:
    return json_response("I'm alive!")


async def readiness(request: web.Request) -> web.Response:
    """LiteLLM's fields (``status: "connected"`` once the database is open, ``db``, ``cache``,
    ``litellm_version``, ``success_callbacks``) beside the sidecar's own."""
    app = request.app
    ready = app[keys.STATE].ready
    deployments = len(app[keys.REGISTRY]) if keys.REGISTRY in app else 0
    body = {
        "status": "connected" if ready else "starting",
        "db": "connected" if ready else "not connected",
        "cache": None,  # no response cache
        "litellm_version": f"llm-sidecar {__version__}",
        "success_callbacks": app[keys.HOOKS].callbacks,  # the litellm_settings callbacks a plugin serves
        "plugins": installed_plugins(app[keys.PLUGIN_MANAGER]),
        "deployments": deployments,
        "version": __version__,
    }
    if not deployments:  # still ready: a sidecar may be filled over the API
        body["warning"] = NO_DEPLOYMENTS
    return json_response(body, status=200 if ready else 503)
