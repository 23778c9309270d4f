"""Property-based tests of every route with schemathesis, from the sidecar's own OpenAPI document,
against the app served on a real port with the shipped mock config (config/sidecar.yaml: no
upstream needed) and a master key.

For every operation of the document, generated requests (valid ones, and invalid ones) must get:
no 500; every error in OpenAI's envelope, with a status the document lists for the operation;
every 2xx matching the document (its JSON answer, each event of a stream, its media type), and
OpenAI's own schema of the same name for OpenAI's shapes. Also schemathesis's own checks: auth is
not ignored, a wrong method is a 405 with ``Allow``, invalid input is refused, and (on GET routes,
whose validity the document alone decides) valid input is accepted.

``make test`` runs :data:`EXAMPLES` examples per operation, derandomized (the same ones every run, so
a failure reproduces); ``make fuzz`` runs many more from a random seed it prints
(``SIDECAR_FUZZ_EXAMPLES``, ``SIDECAR_FUZZ_SEED``: set the seed to replay a run).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import threading
import zlib
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import yaml
from aiohttp import web
from hypothesis import HealthCheck, strategies as st
from jsonschema import Draft202012Validator
from openai_spec import schema_names, validation_errors
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from sidecar import hookimpl, public
from sidecar.app import create_app
from sidecar.config import parse_config
from sidecar.openapi import build_document, template
from sidecar.plugins import get_plugin_manager
from sidecar.routes import ROUTES, served_paths

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-fuzz"
EXAMPLES = int(os.environ.get("SIDECAR_FUZZ_EXAMPLES", "8"))
SEED = os.environ.get("SIDECAR_FUZZ_SEED")
DB_ID = "fuzz-db-1"
"""A deployment added over the API before the run: the management routes' requests may name it."""
MODEL_FOR = {"/embeddings": "mock-embedding", "/moderations": "mock-moderation", "/rerank": "mock-rerank"}
"""The shipped config's model group serving each route (mock-gpt for the rest)."""


class PluginRoutes:
    """Routes a plugin adds (``sidecar_routes``): the document describes them generically."""

    @hookimpl
    def sidecar_routes(self, app):
        @public
        async def plugin_status(request: web.Request) -> web.Response:
            """A public plugin route."""
            return web.json_response({"ok": True})

        async def plugin_echo(request: web.Request) -> web.Response:
            """A plugin route that needs the master key."""
            return web.json_response({"name": request.match_info["name"]})

        return [web.get("/plugin/status", plugin_status), web.get("/plugin/echo/{name}", plugin_echo)]


def fuzz_app(database: Path) -> web.Application:
    """The shipped mock config, a master key, only the mock provider (nothing fuzzed can reach a
    network) and a plugin's routes."""
    data = yaml.safe_load((ROOT / "config" / "sidecar.yaml").read_text())
    data["general_settings"].update(master_key=KEY, database_url=f"sqlite:///{database}")
    pm = get_plugin_manager(load_entrypoints=False)
    import sidecar_mock

    pm.register(sidecar_mock, name="mock")
    pm.register(PluginRoutes(), name="plugin-routes")
    return create_app(parse_config(data, source="config/sidecar.yaml"), pm=pm)


class ServedApp:
    """An app served on 127.0.0.1 by its own event loop in a thread, for a synchronous client."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="served-app", daemon=True)
        self.runner = web.AppRunner(app)

    def __enter__(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)

    async def _start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


DOCUMENT = build_document(fuzz_app(Path("unused.db")))  # (an app is only built here: nothing is opened)
ALIASES = sorted(path for route in ROUTES if route.versioned for kind, path in served_paths(route) if kind != "v1")
"""OpenAI's routes without ``/v1`` and under Azure's path: the same handlers as the ``/v1`` ones."""
# make test: schemathesis's coverage phase (its boundary and invalid values, a few hundred requests
# an operation) runs on the /v1 routes; their aliases get the generated examples alone.
# make fuzz: everything on every route.
schema = schemathesis.openapi.from_dict(DOCUMENT, config=None if SEED else schemathesis.Config.from_dict({
    "operations": [{"include-path": [template(p) for p in ALIASES], "phases": {"coverage": {"enabled": False}}}]}))
_VALIDATORS: dict[str, Draft202012Validator] = {}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> str:
    with ServedApp(fuzz_app(tmp_path_factory.mktemp("fuzz") / "sidecar.db")) as url:
        served = requests.get(f"{url}/openapi.json", timeout=30).json()
        assert served == DOCUMENT, "the served document is the one the tests were generated from"
        added = requests.post(f"{url}/model/new", headers={"Authorization": f"Bearer {KEY}"}, timeout=30, json={
            "model_name": "fuzz-db", "litellm_params": {"model": "mock/fuzz-db"}, "model_info": {"id": DB_ID}})
        assert added.status_code == 200, added.text
        yield url


@pytest.fixture(scope="module")
def session() -> requests.Session:
    with requests.Session() as http:
        yield http


# ---------------------------------------------------------------- steering generation to served models


def _group_for(path: str) -> str:
    return next((model for suffix, model in MODEL_FOR.items() if path.endswith(suffix)), "mock-gpt")


@schema.hook
def map_case(ctx: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Three valid requests in four name a model (or Azure deployment) the app serves, or a
    deployment the mock provider can serve (else nearly every call would be a 404 or a 400); which
    ones is decided by the case itself, so a run repeats. Invalid ones stay as generated."""
    if case.meta is None or case.meta.generation.mode is not schemathesis.GenerationMode.POSITIVE:
        return case
    if zlib.crc32(repr((case.body, case.path_parameters, case.query)).encode()) % 4 == 0:
        return case
    return _steered(case)


def _steered(case: schemathesis.Case) -> schemathesis.Case:
    group = _group_for(case.operation.path)
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        case.body = {**body, "model": group}
    elif isinstance(body, dict) and isinstance(body.get("litellm_params"), dict):
        case.body = {**body, "litellm_params": {**body["litellm_params"], "model": "mock/fuzzed"}}
    if isinstance(case.body, dict) and case.operation.path in ("/model/update", "/model/delete"):
        if isinstance(case.body.get("model_info"), dict):
            case.body = {**case.body, "model_info": {**case.body["model_info"], "id": DB_ID}}
        if isinstance(case.body.get("id"), str):
            case.body = {**case.body, "id": DB_ID}
    params = case.path_parameters or {}
    if "model" in params:  # an Azure route's deployment
        case.path_parameters = {**params, "model": group}
    elif "model_id" in params:  # a model's name, or a deployment's id
        case.path_parameters = {**params, "model_id": group if "/models/" in case.operation.path else DB_ID}
    return case


# ---------------------------------------------------------------- the sidecar's own checks


@schemathesis.check
def no_internal_error(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                      case: schemathesis.Case) -> None:
    """A 500 is a bug (502-504 are upstream failures a mock_response can ask for)."""
    if response.status_code == 500:
        raise AssertionError(f"500 Internal Server Error: {response.text[:500]}")


@schemathesis.check
def errors_are_the_openai_envelope(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                                   case: schemathesis.Case) -> None:
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert "Traceback" not in response.text
    errors = validation_errors(body, "ErrorResponse")
    assert not errors, errors


@schemathesis.check
def answers_match_openais_schemas(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                                  case: schemathesis.Case) -> None:
    """A 2xx JSON answer whose documented schema has one of OpenAI's names matches OpenAI's own;
    each event of a stream matches its documented schema (and OpenAI's of that name)."""
    if not 200 <= response.status_code < 300:
        return
    media = response.headers.get("content-type", [""])[0].split(";")[0]
    documented = DOCUMENT["paths"][case.operation.path][case.method.lower()]["responses"]["200"].get("content", {})
    schema_ = documented.get(media, {}).get("schema", {})
    if media == "application/json" and "$ref" in schema_:
        name = schema_["$ref"].rpartition("/")[2]
        payloads = [json.loads(response.content)]
    elif media == "text/event-stream" and "anyOf" in schema_["properties"]["data"]:
        name = schema_["properties"]["data"]["anyOf"][0]["contentSchema"]["$ref"].rpartition("/")[2]
        lines = re.split(r"\r\n|\r|\n", response.text)  # (SSE's line ends only: not str.splitlines's U+2028...)
        payloads = [json.loads(line[5:]) for line in lines if line.startswith("data:") and line[5:].strip() != "[DONE]"]
        for payload in payloads:
            if "error" not in payload:  # (an error event is the envelope)
                errors = sorted(e.message for e in _validator(name).iter_errors(payload))
                assert not errors, (name, errors, payload)
    else:
        return
    if name == "CreateEmbeddingResponse":  # OpenAI's schema knows no base64 string, which its API sends
        payloads = [{**p, "data": [{**d, "embedding": [0.0]} for d in p["data"]]} for p in payloads]
    if name in _OPENAI_NAMES:
        for payload in payloads:
            if "error" not in payload:
                errors = validation_errors(payload, name)
                assert not errors, (name, errors)


_OPENAI_NAMES = set(schema_names())


def _validator(name: str) -> Draft202012Validator:
    """A validator of the document's component ``name`` (for what schemathesis does not read: SSE events)."""
    if name not in _VALIDATORS:
        registry = Registry().with_resource("urn:sidecar", DRAFT202012.create_resource(DOCUMENT))
        _VALIDATORS[name] = Draft202012Validator({"$ref": f"urn:sidecar#/components/schemas/{name}"},
                                                 registry=registry)
    return _VALIDATORS[name]


# positive_data_acceptance (valid input must be accepted) runs on GET routes only, where the document
# alone decides validity: a model call can be refused by the provider serving it (the mock's own
# limits on n or dimensions, as a real upstream's), a change by what no document says (the
# installed providers, the deployments that exist).
CHECKS = [no_internal_error, errors_are_the_openai_envelope, answers_match_openais_schemas, status_code_conformance,
          content_type_conformance, response_schema_conformance, ignored_auth, unsupported_method,
          negative_data_rejection, positive_data_acceptance]


@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES, derandomize=SEED is None, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck), print_blob=True)
def test_every_route(case: schemathesis.Case, base_url: str, session: requests.Session) -> None:
    checks = CHECKS if case.method == "GET" else [c for c in CHECKS if c is not positive_data_acceptance]
    case.call_and_validate(base_url=base_url, session=session, headers={"Authorization": f"Bearer {KEY}"},
                           checks=checks, timeout=30)


STATUSES: dict[str, collections.Counter] = {}
"""The statuses each operation answered in this run."""


@schema.hook
def after_call(ctx: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response) -> None:
    STATUSES.setdefault(case.operation.label, collections.Counter())[response.status_code] += 1


def test_the_run_reached_answers_not_only_errors() -> None:
    """The checks on 2xx answers ran: every /v1 model route and every GET route without a path
    parameter answered some generated requests with a 2xx."""
    if not STATUSES:
        pytest.skip("test_every_route did not run (deselected)")
    wanted = [op for op in STATUSES if op.startswith(("POST /v1/", "GET /v1/models", "POST /v2/"))
              or (op.startswith("GET ") and "{" not in op)]
    assert len(wanted) >= 20, sorted(STATUSES)
    without = {op: dict(STATUSES[op]) for op in wanted if not any(200 <= s < 300 for s in STATUSES[op])}
    assert not without, without
