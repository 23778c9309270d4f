"""``GET /openapi.json``: the API's OpenAPI 3.1 document, generated from the app's router, the route
table (:data:`sidecar.routes.ROUTES`) and the msgspec Structs (``msgspec.json.schema_components``).

Every route the app's router holds is described: those of the table with their request and answer
Structs, error statuses and query parameters; plugins' routes (``sidecar_routes``), which have no
Structs, generically. Structs that stand for one of OpenAI's schemas carry its name
(:data:`OPENAI_NAMES`), and OpenAI's routes under ``/v1`` its operationIds, so clients generated
from this document match those generated from OpenAI's. With a master key configured, the four
headers that may carry it are security schemes; health checks and public routes need none.

The document is built on first request and kept, encoded, in the app's state: imported and built
only when asked for.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import msgspec
from aiohttp import web

from sidecar import __version__, keys
from sidecar.errors import ErrorEnvelope
from sidecar.middlewares import is_public
from sidecar.routes import AZURE_PREFIX, ROUTES, Param, Route, served_paths

__all__ = ["OPENAI_NAMES", "build_document", "document_bytes"]

OPENAI_NAMES = {
    "ChatCompletionRequest": "CreateChatCompletionRequest",
    "ChatMessage": "ChatCompletionRequestMessage",
    "StreamOptions": "ChatCompletionStreamOptions",
    "ChatCompletion": "CreateChatCompletionResponse",
    "ResponseMessage": "ChatCompletionResponseMessage",
    "ToolCall": "ChatCompletionMessageToolCall",
    "Usage": "CompletionUsage",
    "ChatCompletionChunk": "CreateChatCompletionStreamResponse",
    "Delta": "ChatCompletionStreamResponseDelta",
    "TextCompletionRequest": "CreateCompletionRequest",
    "TextCompletion": "CreateCompletionResponse",
    "EmbeddingRequest": "CreateEmbeddingRequest",
    "EmbeddingResponse": "CreateEmbeddingResponse",
    "ModerationRequest": "CreateModerationRequest",
    "ModerationResponse": "CreateModerationResponse",
    "ImageGenerationRequest": "CreateImageRequest",
    "SpeechRequest": "CreateSpeechRequest",
    "TranscriptionRequest": "CreateTranscriptionRequest",
    "TranscriptionResponse": "CreateTranscriptionResponseJson",
    "ModelList": "ListModelsResponse",
    "ModelCard": "Model",
    "ErrorEnvelope": "ErrorResponse",
    "ErrorBody": "Error",
}
"""msgspec's component name (the Struct's) -> the name OpenAI's spec gives the same shape."""

SECURITY_SCHEMES = {
    "ApiKeyAuth": {"type": "http", "scheme": "bearer",
                   "description": "The master key as `Authorization: Bearer <key>` (OpenAI's scheme)."},
    "XApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "The master key in `x-api-key` (Anthropic-style clients)."},
    "LiteLLMApiKey": {"type": "apiKey", "in": "header", "name": "x-litellm-api-key",
                      "description": "The master key in `x-litellm-api-key`, beside a provider SDK's own "
                                     "`Authorization`."},
    "AzureApiKey": {"type": "apiKey", "in": "header", "name": "api-key",
                    "description": "The master key in `api-key` (Azure OpenAI SDKs)."},
}
"""Where the master key may be sent (:func:`sidecar.middlewares.presented_keys`): any one will do."""

ERRORS = {
    400: "The request is malformed or a field is wrong (`param` names it).",
    401: "The master key is missing or wrong (or the upstream refused its own key).",
    403: "The upstream refused the call.",
    404: "Not found (`code` says what: a model, a deployment...).",
    409: "A conflict: the id is taken, or the deployment comes from the config file.",
    413: "The request body is larger than `general_settings.max_request_size_mb`.",
    422: "The upstream could not process the request.",
    429: "Rate limited: by the upstream, or no deployment of the group is free now.",
    500: "A plugin failed: a hook, or a provider's plugin that could not be imported (the log says how).",
    502: "The upstream failed or answered something unusable.",
    503: "Not ready, shutting down, or another worker holds the registry lock.",
    504: "The upstream did not answer in time.",
}
"""What each error status means; every error's body is OpenAI's error envelope."""

_PY_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}
_REF = "#/components/schemas/{name}"
_TAGS = {
    "OpenAI": "OpenAI's API, also without `/v1`; the model groups of the config (or `/model/new`) serve it.",
    "Azure OpenAI": "The same, for Azure OpenAI SDK clients: the path's `{model}` names the model group.",
    "Rerank": "Cohere's rerank API, as LiteLLM serves it.",
    "Model info": "What is served, as LiteLLM, coding agents and dashboards read it.",
    "Model management": "Deployments added, changed and removed at runtime (persisted in SQLite).",
    "Health": "Liveness, readiness and each deployment's health.",
    "Docs": "This document, the interactive docs and the route list.",
    "Plugins": "Routes added by installed plugins (`sidecar_routes`).",
}


def document_bytes(app: web.Application) -> bytes:
    """The encoded document, built once per app (again only if its route count changed)."""
    state = app[keys.STATE]
    count = len(app.router.routes())
    if state.openapi is None or state.openapi[0] != count:
        state.openapi = (count, msgspec.json.encode(build_document(app)))
    return state.openapi[1]


def template(path: str) -> str:
    """An aiohttp path as OpenAPI writes it: ``/models/{model_id:.+}`` -> ``/models/{model_id}``."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    secured = bool(app[keys.CONFIG].general.master_key)
    table = {(r.method, template(path)): (r, kind) for r in ROUTES for kind, path in served_paths(r)}
    schemas = _Schemas(ROUTES)
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for method, path, handler in _router_routes(app):
        found = table.get((method, path))
        if found is not None and found[0].handler is handler:
            route, kind = found
            op = _operation(route, kind, method, path, schemas)
        else:
            op = _plugin_operation(method, path, handler)
        if secured and not is_public(path, handler):
            op["responses"].setdefault("401", _error_ref(401))
        elif secured:
            op["security"] = []
        op["responses"] = dict(sorted(op["responses"].items()))
        tags.extend(t for t in op["tags"] if t not in tags)
        paths.setdefault(path, {})[method.lower()] = op
    components: dict[str, Any] = {
        "schemas": dict(sorted(schemas.components.items())),
        "responses": {str(status): {"description": text, "content": {"application/json": {
            "schema": schemas.ref(ErrorEnvelope)}}} for status, text in ERRORS.items()},
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-sidecar",
            "version": __version__,
            "summary": "An OpenAI-compatible LLM gateway with LiteLLM's proxy API.",
            "description": "Generated from the sidecar's route table and the Structs it reads and answers "
                           "with. Every error is OpenAI's envelope `{\"error\": {message, type, param, code}}`.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [{"name": t, "description": _TAGS[t]} if t in _TAGS else {"name": t} for t in tags],
        "paths": paths,
        "components": components,
    }
    if secured:
        components["securitySchemes"] = SECURITY_SCHEMES
        doc["security"] = [{name: []} for name in SECURITY_SCHEMES]
    return doc


def _router_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """``(method, path template, handler)`` of every route the app serves (HEAD aside: aiohttp
    adds it beside GET)."""
    out = []
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD":
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:
            continue
        methods = ("GET", "POST", "PUT", "PATCH", "DELETE") if route.method == "*" else (route.method,)
        out.extend((method, path, route.handler) for method in methods)
    return out


class _Schemas:
    """The components of every Struct the table names, under OpenAI's names where they have one."""

    def __init__(self, routes: list[Route]) -> None:
        types: list[Any] = [ErrorEnvelope]
        for route in routes:
            types.extend(t for t in (route.body, route.form, route.answer, route.stream) if t is not None)
        types = list(dict.fromkeys(types))
        inline, components = msgspec.json.schema_components(types, ref_template=_REF)
        renamed = {OPENAI_NAMES.get(name, name): schema for name, schema in components.items()}
        self.components: dict[str, Any] = _rename_refs(renamed)
        self._inline = {t: _rename_refs(s) for t, s in zip(types, inline)}
        for route in routes:
            if route.form is not None:
                self._add_file(self.name(route.form))

    def ref(self, type_: Any) -> dict[str, Any]:
        return self._inline[type_]

    def name(self, type_: Any) -> str:
        return self.ref(type_)["$ref"].rpartition("/")[2]

    def azure_body(self, type_: Any) -> dict[str, Any]:
        """A request Struct's schema with ``model`` optional: an Azure route's path names it."""
        name = "Azure" + self.name(type_)
        if name not in self.components:
            schema = copy.deepcopy(self.components[self.name(type_)])
            schema["title"] = name
            schema["required"] = [f for f in schema.get("required", []) if f != "model"]
            schema["description"] = "As the OpenAI route's body; `model` is taken from the path."
            self.components[name] = schema
        return {"$ref": _REF.format(name=name)}

    def _add_file(self, name: str) -> None:
        """A multipart form's Struct holds its text fields; the ``file`` part is added here."""
        schema = self.components[name]
        schema["properties"] = {"file": {"type": "string", "contentMediaType": "application/octet-stream",
                                         "minLength": 1,
                                         "description": "The audio file (streamed to the upstream as it arrives)."},
                                **schema["properties"]}
        schema["required"] = ["file", *schema.get("required", [])]
        schema["propertyNames"] = {"pattern": '^[^\\x00-\\x1f\\x7f"]*$'}  # (a part header cannot hold them)


def _rename_refs(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _rename_refs(v) for k, v in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str):
            base, _, name = ref.rpartition("/")
            out["$ref"] = f"{base}/{OPENAI_NAMES.get(name, name)}"
        return out
    if isinstance(value, list):
        return [_rename_refs(v) for v in value]
    return value


def _error_ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{status}"}


def _operation_id(route: Route, kind: str, method: str, path: str) -> str:
    if route.operation and kind == "v1":
        return route.operation
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()} {path}").strip("_")


def _operation(route: Route, kind: str, method: str, path: str, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": _operation_id(route, kind, method, path),
        "summary": route.summary,
        "tags": ["Azure OpenAI" if kind == "azure" else route.tag],
    }
    if route.notes:
        op["description"] = route.notes
    params = _path_params(path, kind, route.path_values)
    params += [_query_param(p) for p in route.query]
    if kind == "azure":
        params.append({"name": "api-version", "in": "query", "required": False, "schema": {"type": "string"},
                       "description": "Accepted (Azure OpenAI SDKs send it) and not used."})
    if params:
        op["parameters"] = params
    if route.body is not None:
        schema = schemas.azure_body(route.body) if kind == "azure" else schemas.ref(route.body)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    elif route.form is not None:
        schema = schemas.azure_body(route.form) if kind == "azure" else schemas.ref(route.form)
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    content: dict[str, Any] = {}
    if route.answer is not None:
        content["application/json"] = {"schema": schemas.ref(route.answer)}
    if route.stream is not None:
        content["text/event-stream"] = {"schema": _sse_event(schemas.ref(route.stream))}
    for media in route.media:
        content.setdefault(media, {"schema": _sse_event(None) if media == "text/event-stream" else {"type": "string"}})
    ok: dict[str, Any] = {"description": "OK" if route.stream is None else
                          "OK; with `stream: true`, server-sent events: one `data:` per chunk, then `data: [DONE]`."}
    if content:
        ok["content"] = content
    errors = set(route.errors)
    if any(p.type is not str or p.values for p in route.query):
        errors.add(400)  # a query value of the wrong type, or not one of its values
    op["responses"] = {"200": ok, **{str(s): _error_ref(s) for s in sorted(errors)}}
    return op


def _sse_event(payload: dict[str, Any] | None) -> dict[str, Any]:
    """One server-sent event (as OpenAPI 3.2's ``itemSchema`` reads a stream): its ``data`` is
    ``payload`` as JSON, an error envelope (a failure mid-stream), or ``[DONE]`` at the end;
    ``None``: the upstream's own events, relayed as they come."""
    if payload is None:
        data: dict[str, Any] = {"type": "string"}
    else:
        data = {"type": "string", "anyOf": [
            {"contentMediaType": "application/json", "contentSchema": payload},
            {"contentMediaType": "application/json", "contentSchema": {"$ref": _REF.format(name="ErrorResponse")}},
            {"const": "[DONE]"}]}
    return {"type": "object", "required": ["data"], "properties": {
        "data": data, "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}}}


def _plugin_operation(method: str, path: str, handler: Any) -> dict[str, Any]:
    """A plugin's route: no Structs to describe it, so its handler's docstring and any answer."""
    doc = (getattr(handler, "__doc__", None) or "").strip()
    module = getattr(handler, "__module__", "") or ""
    op: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()} {path}").strip("_"),
        "summary": doc.split("\n\n")[0].replace("\n", " ") if doc else f"{method} {path}",
        "description": f"Served by a plugin (`{module.split('.')[0]}`)." if module else "Served by a plugin.",
        "tags": ["Plugins"],
    }
    params = _path_params(path, "")
    if params:
        op["parameters"] = params
    if method in ("POST", "PUT", "PATCH"):
        op["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
    op["responses"] = {
        "200": {"description": "The plugin's answer.", "content": {"*/*": {"schema": {}}}},
        "default": {"description": "An error, in OpenAI's error envelope.",
                    "content": {"application/json": {"schema": {"$ref": _REF.format(name="ErrorResponse")}}}},
    }
    return op


def _path_params(path: str, kind: str, values: tuple[Param, ...] = ()) -> list[dict[str, Any]]:
    known = {p.name: p for p in values}
    out = []
    for name in re.findall(r"\{(\w+)\}", path):
        param: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        if name in known:
            param["description"] = known[name].description
            param["schema"]["enum"] = list(known[name].values)
        if kind == "azure" and path.startswith(AZURE_PREFIX) and name == "model":
            param["description"] = "The model group (over the body's `model`)."
        out.append(param)
    return out


def _query_param(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _PY_TYPES[param.type]}
    if param.values:
        schema["enum"] = list(param.values)
    return {"name": param.name, "in": "query", "required": False, "description": param.description,
            "schema": schema}
