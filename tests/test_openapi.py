"""``GET /openapi.json``: a valid OpenAPI 3.1 document of every route the app serves, generated
from the route table and the Structs; ``/docs``: Swagger UI from the packaged copy."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from aiohttp import web
from gateway_helpers import assert_error
from openai_spec import schema_names
from openapi_spec_validator import validate

from sidecar import hookimpl, public
from sidecar.handlers.docs import ASSETS_DIR
from sidecar.openapi import SECURITY_SCHEMES, document_bytes, template
from sidecar.plugins import get_plugin_manager

KEY = "sk-docs"
SECURED = {"general_settings": {"master_key": KEY}}
OPENAI_OPERATIONS = {
    ("post", "/v1/chat/completions"): ("createChatCompletion", "CreateChatCompletionRequest",
                                       "CreateChatCompletionResponse"),
    ("post", "/v1/completions"): ("createCompletion", "CreateCompletionRequest", "CreateCompletionResponse"),
    ("post", "/v1/embeddings"): ("createEmbedding", "CreateEmbeddingRequest", "CreateEmbeddingResponse"),
    ("post", "/v1/moderations"): ("createModeration", "CreateModerationRequest", "CreateModerationResponse"),
    ("post", "/v1/images/generations"): ("createImage", "CreateImageRequest", "ImagesResponse"),
    ("post", "/v1/audio/speech"): ("createSpeech", "CreateSpeechRequest", None),
    ("post", "/v1/audio/transcriptions"): ("createTranscription", "CreateTranscriptionRequest",
                                           "CreateTranscriptionResponseJson"),
    ("get", "/v1/models"): ("listModels", None, "ListModelsResponse"),
    ("get", "/v1/models/{model_id}"): ("retrieveModel", None, "Model"),
}
"""OpenAI's operationIds and the component names of its spec for the same shapes."""


async def _document(client) -> dict:
    resp = await client.get("/openapi.json")  # no key: the docs page loads it before anyone authorizes
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.json()


def _served(app: web.Application) -> set[tuple[str, str]]:
    return {(r.method.lower(), template(r.resource.canonical)) for r in app.router.routes() if r.method != "HEAD"}


def _documented(doc: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in doc["paths"].items() for method in ops}


def _ref_name(schema: dict) -> str:
    return schema["$ref"].rpartition("/")[2]


class RoutesPlugin:
    """A plugin serving a public route, a keyed one, and ``/`` (which the docs page then leaves)."""

    @hookimpl
    def sidecar_routes(self, app):
        @public
        async def status(request):
            """The plugin's status page.

            More words that are not the summary."""
            return web.json_response({"ok": True})

        async def items(request):
            return web.json_response({"id": request.match_info["item_id"]})

        async def home(request):
            return web.Response(text="the plugin's home")

        return [web.get("/plugin/status", status), web.post("/plugin/items/{item_id}", items), web.get("/", home)]


async def test_document_is_valid_openapi_31_and_describes_every_served_route(make_client):
    client = await make_client(SECURED)
    doc = await _document(client)
    validate(doc)  # the OpenAPI 3.1 meta-schema (openapi-spec-validator)
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "llm-sidecar"
    assert _documented(doc) == _served(client.app)
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path in ("/chat/completions", "/v1/chat/completions", "/openai/deployments/{model}/chat/completions",
                 "/v2/rerank", "/model/{model_id}/update", "/health/readiness", "/docs", "/"):
        assert path in doc["paths"], path


async def test_openai_routes_carry_openai_names_and_shapes(make_client):
    doc = await _document(await make_client())
    known = set(schema_names())  # the committed extract of OpenAI's spec (its response schemas)
    for (method, path), (operation_id, request, answer) in OPENAI_OPERATIONS.items():
        op = doc["paths"][path][method]
        assert op["operationId"] == operation_id
        if request is not None:
            content = op["requestBody"]["content"]
            assert _ref_name(next(iter(content.values()))["schema"]) == request
        if answer is not None:
            assert _ref_name(op["responses"]["200"]["content"]["application/json"]["schema"]) == answer
            assert answer in known, answer
    # a stream's event (as OpenAPI 3.2's itemSchema reads it): a chunk, an error envelope or [DONE]
    stream = doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    chunk, error, done = stream["schema"]["properties"]["data"]["anyOf"]
    assert _ref_name(chunk["contentSchema"]) == "CreateChatCompletionStreamResponse"
    assert _ref_name(error["contentSchema"]) == "ErrorResponse" and done == {"const": "[DONE]"}
    error = doc["paths"]["/v1/embeddings"]["post"]["responses"]["429"]
    assert error == {"$ref": "#/components/responses/429"}
    assert _ref_name(doc["components"]["responses"]["429"]["content"]["application/json"]["schema"]) == "ErrorResponse"
    envelope = doc["components"]["schemas"]["Error"]
    assert set(envelope["required"]) == {"message", "type", "param", "code"}
    # an Azure route's path names the model: the body's `model` is optional there
    azure = doc["paths"]["/openai/deployments/{model}/embeddings"]["post"]
    body = doc["components"]["schemas"][_ref_name(azure["requestBody"]["content"]["application/json"]["schema"])]
    assert "model" not in body["required"] and "input" in body["required"]
    assert "model" in doc["components"]["schemas"]["CreateEmbeddingRequest"]["required"]
    assert {p["name"] for p in azure["parameters"]} == {"model", "api-version"}
    form = doc["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    transcription = doc["components"]["schemas"][_ref_name(form["schema"])]
    assert {"file", "model"} <= set(transcription["required"])


async def test_security_schemes_are_the_master_key_headers_when_one_is_set(make_client):
    doc = await _document(await make_client(SECURED))
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {"type": "http", "scheme": "bearer", "description": schemes["ApiKeyAuth"]["description"]}
    assert {s.get("name") for s in schemes.values()} == {None, "x-api-key", "x-litellm-api-key", "api-key"}
    assert doc["security"] == [{name: []} for name in SECURITY_SCHEMES]
    for path in ("/health/liveliness", "/health/readiness", "/docs", "/openapi.json", "/"):
        assert doc["paths"][path]["get"]["security"] == [], path
    for path, method in (("/health", "get"), ("/v1/chat/completions", "post"), ("/model/new", "post")):
        op = doc["paths"][path][method]
        assert "security" not in op and "401" in op["responses"], path
    open_doc = await _document(await make_client())
    assert "securitySchemes" not in open_doc["components"] and "security" not in open_doc
    assert "401" not in open_doc["paths"]["/model/new"]["post"]["responses"]


async def test_plugin_routes_are_described_generically(make_client):
    pm = get_plugin_manager()
    pm.register(RoutesPlugin(), name="routes-plugin")
    client = await make_client(SECURED, pm=pm)
    doc = await _document(client)
    validate(doc)
    assert _documented(doc) == _served(client.app)
    status = doc["paths"]["/plugin/status"]["get"]
    assert status["summary"] == "The plugin's status page." and status["tags"] == ["Plugins"]
    assert status["security"] == [] and "default" in status["responses"]
    items = doc["paths"]["/plugin/items/{item_id}"]["post"]
    assert "security" not in items and items["parameters"][0]["name"] == "item_id"
    assert doc["paths"]["/"]["get"]["tags"] == ["Plugins"]  # the plugin's /, not the docs page
    assert await (await client.get("/", headers={"x-api-key": KEY})).text() == "the plugin's home"
    assert (await client.get("/docs")).status == 200


async def test_document_is_built_once_per_app(make_client):
    client = await make_client()
    first = await (await client.get("/openapi.json")).read()
    assert document_bytes(client.app) is document_bytes(client.app)
    assert await (await client.get("/openapi.json")).read() == first


async def test_docs_page_and_its_assets_need_no_key(make_client):
    client = await make_client(SECURED)
    for path in ("/docs", "/"):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        assert 'src="docs/swagger-ui-bundle.js"' in page and 'url: "openapi.json"' in page
        assert "://" not in page  # nothing from another host: no CDN
    bundle = await client.get("/docs/swagger-ui-bundle.js")
    assert bundle.status == 200 and bundle.content_type == "text/javascript"
    assert await bundle.read() == (ASSETS_DIR / "swagger-ui-bundle.js").read_bytes()
    css = await client.get("/docs/swagger-ui.css")
    assert css.status == 200 and css.content_type == "text/css"
    await assert_error(await client.get("/docs/LICENSE"), 404, param="asset")
    await assert_error(await client.get("/docs/..%2Fopenapi.py"), 404, param="asset")
    await assert_error(await client.get("/routes"), 401)  # the rest still needs the key


def test_nothing_of_the_docs_is_imported_at_start_up(tmp_path):
    script = (
        "import sys\n"
        "from sidecar.app import create_app\n"
        "from sidecar.config import parse_config\n"
        f"create_app(parse_config({{'general_settings': {{'database_url': 'sqlite:///{tmp_path}/s.db'}}}}, source='t'))\n"
        "print(sorted(m for m in sys.modules if m == 'sidecar.openapi' or m.startswith('openapi')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_swagger_ui_is_packaged_with_its_licence():
    names = {p.name for p in ASSETS_DIR.iterdir()}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"} <= names
    assert "Apache License" in (ASSETS_DIR / "LICENSE").read_text()
    version = re.search(r"swagger-ui-dist` (\d+\.\d+\.\d+)", (ASSETS_DIR / "README.md").read_text())
    assert version is not None and int(version.group(1).split(".")[0]) >= 5  # 5+ renders OpenAPI 3.1
