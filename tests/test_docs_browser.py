"""``/docs`` in a real browser: headless Chromium (Debian's ``chromium``, which ``make test``
installs) loads the page from the running sidecar, with no internet, and Swagger UI lists every
route of the document, with its "Authorize" button for the master key."""

from __future__ import annotations

import asyncio
import html
import re
import shutil

import pytest
from aiohttp import web

from sidecar.app import create_app
from sidecar.openapi import template

KEY = "sk-browser"
CHROMIUM_FLAGS = (
    # as root (CI), without a GPU or a session bus; no connection to any other host
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--virtual-time-budget=30000",
)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium); "
                    "this test needs a real browser and is not skipped without one")
    return path


async def rendered(url: str, profile: str) -> str:
    """The page's DOM once its scripts have run (``--dump-dom``)."""
    proc = await asyncio.create_subprocess_exec(
        chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("chromium did not render the page within 120 s") from None
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


@pytest.mark.parametrize("path", ["/docs", "/"])
async def test_swagger_ui_lists_every_route(aiohttp_server, make_config, tmp_path, path):
    app = create_app(make_config({"model_list": [{"model_name": "mock-gpt", "litellm_params": {"model": "mock/x"}}],
                                  "general_settings": {"master_key": KEY}}))
    asked: list[str] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        asked.append(f"{response.status} {request.path}")

    app.on_response_prepare.append(record)
    server = await aiohttp_server(app)
    dom = await rendered(str(server.make_url(path)), str(tmp_path / "profile"))

    # the page took its script, its styles and the document from the sidecar, without the key
    for fetched in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/openapi.json"):
        assert f"200 {fetched}" in asked, asked
    listed = {(m.upper(), html.unescape(p)) for m, p in re.findall(
        r'id="operations-[^"]*".*?opblock-summary-method">(\w+)<.*?data-path="([^"]+)"', dom, flags=re.S)}
    served = {(r.method, template(r.resource.canonical)) for r in app.router.routes() if r.method != "HEAD"}
    assert served <= listed, sorted(served - listed)
    assert re.search(r'class="btn authorize[^"]*"', dom), "no Authorize button (the master key's schemes)"
    assert "llm-sidecar" in dom and "OAS 3.1" in dom
