"""``GET /openapi.json`` and the interactive docs (``/docs``, and ``/`` unless a plugin serves it).

Served without the master key: the page loads the document before anyone has authorized, and its
"Authorize" button takes the key for the calls made from it. Nothing is imported or read before
the first request: the document's generator (:mod:`sidecar.openapi`) is imported then, and
Swagger UI's files (``sidecar/static/swagger-ui``, a packaged copy: no CDN) are sent from disk.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from sidecar.errors import SidecarError
from sidecar.hooks import public

ASSETS_DIR = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The files the page loads, and their media types."""

# Links are relative, so the page works at / and /docs, and behind a proxy's path prefix.
# validatorUrl: null keeps Swagger UI from sending the document to its online validator.
PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llm-sidecar API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  validatorUrl: null,
});
</script>
</body>
</html>
"""


@public
async def openapi_json(request: web.Request) -> web.Response:
    from sidecar.openapi import document_bytes

    return web.Response(body=document_bytes(request.app), content_type="application/json")


@public
async def swagger_ui(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8")


@public
async def swagger_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["asset"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise SidecarError(404, f"no docs asset {name!r}; there are {', '.join(sorted(ASSETS))}", param="asset",
                           code="not_found")
    return web.FileResponse(ASSETS_DIR / name, headers={"Content-Type": media_type,
                                                        "Cache-Control": "public, max-age=86400"})
