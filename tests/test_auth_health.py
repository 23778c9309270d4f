"""The master key (three header forms, 401 envelopes, open health routes) and health checks."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from aiohttp.test_utils import make_mocked_request

from sidecar.app import create_app
from sidecar.handlers import health

from conftest import MOCK_MODELS
from gateway_helpers import PREFIXES, Server, assert_error, write_config
from openai_spec import assert_valid

KEY = "sk-master"
SECURED = {"model_list": MOCK_MODELS, "general_settings": {"master_key": KEY}}
CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {KEY}"},
    {"Authorization": f"bearer {KEY}"},
    {"x-api-key": KEY},
    {"x-litellm-api-key": KEY},
    {"x-litellm-api-key": f"Bearer {KEY}"},
    # an SDK that puts its own token in Authorization and the gateway's key elsewhere
    {"Authorization": "Bearer vertex-oauth-token", "x-litellm-api-key": KEY},
    {"Authorization": "Bearer sdk-placeholder", "x-api-key": KEY},
], ids=lambda h: "+".join(f"{k}:{v.split()[0]}" for k, v in h.items()))
async def test_master_key_accepted(make_client, prefix, headers):
    client = await make_client(SECURED)
    resp = await client.post(f"{prefix}/chat/completions", json=CHAT, headers=headers)
    assert resp.status == 200, await resp.text()
    assert_valid(await resp.json(), "CreateChatCompletionResponse")
    resp = await client.post(f"{prefix}/chat/completions", json={**CHAT, "stream": True}, headers=headers)
    assert resp.status == 200
    assert (await resp.read()).endswith(b"data: [DONE]\n\n")
    resp = await client.get(f"{prefix}/models", headers=headers)
    assert resp.status == 200
    resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-embedding", "input": "x"}, headers=headers)
    assert resp.status == 200


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("route", "method", "body"), [
    ("/chat/completions", "POST", CHAT),
    ("/embeddings", "POST", {"model": "mock-embedding", "input": "x"}),
    ("/moderations", "POST", {"input": "x"}),
    ("/models", "GET", None),
])
async def test_missing_key_is_401(make_client, prefix, route, method, body):
    client = await make_client(SECURED)
    resp = await client.request(method, prefix + route, json=body)
    err = await assert_error(resp, 401, code="missing_api_key")
    assert err["type"] == "authentication_error"


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer sk-wrong"},
    {"Authorization": f"Bearer {KEY}x"},
    {"Authorization": f"Basic {KEY}"},
    {"x-api-key": "sk-mast"},
    {"x-litellm-api-key": "nope"},
    {"Authorization": "Bearer "},
], ids=lambda h: "+".join(f"{k}:{v}" for k, v in h.items()))
async def test_wrong_key_is_401(make_client, headers):
    client = await make_client(SECURED)
    resp = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    err = await assert_error(resp, 401)
    assert KEY not in err["message"]
    assert err["type"] == "authentication_error"


async def raw_request(client, head: bytes) -> bytes:
    """The raw answer to ``head`` (a request with no body) sent over a socket of its own."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + b"Host: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return answer


async def test_keys_that_are_not_utf8_and_paths_through_health_are_refused(make_client):
    client = await make_client(SECURED)
    for header in (b"Authorization: Bearer \xff\xfe", b"x-api-key: \xff", b"Authorization: \xc3"):
        answer = await raw_request(client, b"GET /v1/models HTTP/1.1\r\n" + header + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    # a path that starts like a health check's but names another route needs the key
    for path in (b"/health/../v1/models", b"/health/%2e%2e/v1/models", b"/health//../v1/models"):
        answer = await raw_request(client, b"GET " + path + b" HTTP/1.1\r\n")
        assert answer.split(b" ", 2)[1] in (b"401", b"404"), answer[:200]


async def test_auth_runs_before_body_checks(make_client):
    client = await make_client(SECURED)
    resp = await client.post("/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    await assert_error(resp, 401)
    resp = await client.get("/v1/no/such/route")
    await assert_error(resp, 401)
    resp = await client.get("/v1/no/such/route", headers={"x-api-key": KEY})
    await assert_error(resp, 404)


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/liveness", "/health/readiness"])
async def test_health_routes_are_open(make_client, path):
    client = await make_client(SECURED)
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    resp = await client.get(path, headers={"Authorization": "Bearer sk-wrong"})
    assert resp.status == 200


async def test_without_master_key_everything_is_open(make_client):
    client = await make_client()
    for headers in ({}, {"Authorization": "Bearer anything"}, {"x-api-key": "whatever"}):
        resp = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert resp.status == 200, await resp.text()
        resp = await client.get("/models", headers=headers)
        assert resp.status == 200


async def test_master_key_from_environment(make_client, monkeypatch):
    monkeypatch.setenv("TEST_SIDECAR_MASTER_KEY", "sk-from-env")
    client = await make_client({"model_list": MOCK_MODELS,
                                "general_settings": {"master_key": "os.environ/TEST_SIDECAR_MASTER_KEY"}})
    resp = await client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-from-env"})
    assert resp.status == 200
    resp = await client.post("/v1/chat/completions", json=CHAT,
                             headers={"Authorization": "Bearer os.environ/TEST_SIDECAR_MASTER_KEY"})
    await assert_error(resp, 401)


async def test_liveliness(make_client):
    client = await make_client()
    resp = await client.get("/health/liveliness")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert isinstance(await resp.json(), str)


async def test_readiness_when_ready(make_client):
    client = await make_client()
    resp = await client.get("/health/readiness")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "connected"
    assert body["db"] == "connected"
    assert body["plugins"] >= 1
    assert body["deployments"] == len(MOCK_MODELS)
    assert isinstance(body["version"], str) and body["version"]


@pytest.mark.parametrize("path", ["/health/../v1/models", "/health/%2e%2e/v1/models", "/health/..%2fv1/models",
                                  "/health/readiness/../../v1/chat/completions"])
async def test_health_prefix_does_not_open_other_routes(make_client, path):
    """A raw request line (no client-side normalisation) cannot reach a route through /health/."""
    client = await make_client(SECURED)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert status in (401, 404), head
    assert set(json.loads(body)) == {"error"}


async def test_readiness_before_start_is_503(make_config):
    """Before the database is open (the app not started yet), readiness says so with a 503."""
    app = create_app(make_config())
    resp = await health.readiness(make_mocked_request("GET", "/health/readiness", app=app))
    assert resp.status == 503
    assert json.loads(resp.body)["status"] == "starting"


@pytest.mark.parametrize("master_key", [None, KEY])
def test_serve_warns_when_open(tmp_path, master_key):
    general = {"database_url": f"sqlite:///{tmp_path}/sidecar.db"}
    if master_key:
        general["master_key"] = master_key
    config = write_config(tmp_path / "c.yaml", {"model_list": MOCK_MODELS, "general_settings": general})
    with Server(config, tmp_path) as server:
        server.wait_ready()
        request = urllib.request.Request(server.url + "/v1/models")
        if master_key:
            request.add_header("Authorization", f"Bearer {master_key}")
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
        output = server.output()
    warnings = [line for line in output.splitlines() if "WARNING" in line and "master_key" in line]
    if master_key:
        assert warnings == []
        assert master_key not in output
    else:
        [line] = warnings
        assert "open" in line
