"""``GET /routes``: every route the app serves, with its methods, in LiteLLM's shape."""

from __future__ import annotations

from aiohttp import web

from sidecar.http import json_response


def route_table(app: web.Application) -> list[dict[str, object]]:
    """One row per path (``/v1/x`` and ``/x`` apart), its methods sorted, named by its handler;
    read from the app's router, so every route added to :data:`sidecar.routes.ROUTES` is listed."""
    rows: dict[str, dict[str, object]] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method == "HEAD":
            continue
        row = rows.setdefault(path, {"path": path, "methods": [], "name": route.handler.__name__})
        if route.method not in row["methods"]:
            row["methods"].append(route.method)
    for row in rows.values():
        row["methods"].sort()
    return list(rows.values())


async def list_routes(request: web.Request) -> web.Response:
    return json_response({"routes": route_table(request.app)})
