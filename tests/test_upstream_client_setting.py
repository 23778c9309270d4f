"""``general_settings.upstream_http_client``: which client makes upstream calls (the lean one by
default, or aiohttp's ``ClientSession``), how ``$SIDECAR_UPSTREAM_HTTP_CLIENT`` decides when the
config does not, and that either serves a proxied chat, plain and streamed. (The whole suite runs
on both: ``make test``.)"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp
import pytest
import trustme
from aiohttp import web
from openai_helpers import KEY, dep, post, stream, user
from test_httpclient import PROXY_VARS

from sidecar import keys
from sidecar.config import ConfigError
from sidecar.httpclient import LeanSession
from sidecar.testing import assert_valid

CLIENTS = {"lean": LeanSession, "aiohttp": aiohttp.ClientSession}


@pytest.mark.parametrize("name", sorted(CLIENTS))
async def test_the_setting_chooses_the_client_and_it_serves_chat_and_streams(name, make_client, openai_fake,
                                                                              monkeypatch):
    monkeypatch.setenv("SIDECAR_UPSTREAM_HTTP_CLIENT", "aiohttp" if name == "lean" else "lean")  # the file wins
    client = await make_client({"model_list": [dep("gpt", "openai/gpt-4o-mini", openai_fake.base_url)],
                                "general_settings": {"upstream_http_client": name}})
    assert type(client.app[keys.CLIENT_SESSION]) is CLIENTS[name]
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "gpt", "messages": user("hi")})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert openai_fake.last.headers["Authorization"] == f"Bearer {KEY}"
    _, chunks = await stream(client, {"model": "gpt", "messages": user("hi")})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == f"{openai_fake.greeting} hi"  # (the fake echoes the last message)


@pytest.mark.parametrize(("env", "expected"), [(None, LeanSession), ("lean", LeanSession),
                                               ("aiohttp", aiohttp.ClientSession)])
async def test_without_the_setting_the_variable_decides_else_the_lean_client(env, expected, make_client,
                                                                             monkeypatch):
    if env is None:
        monkeypatch.delenv("SIDECAR_UPSTREAM_HTTP_CLIENT", raising=False)
    else:
        monkeypatch.setenv("SIDECAR_UPSTREAM_HTTP_CLIENT", env)
    client = await make_client()
    assert type(client.app[keys.CLIENT_SESSION]) is expected


def test_a_bad_variable_is_a_start_up_error_naming_it(make_config, monkeypatch):
    monkeypatch.setenv("SIDECAR_UPSTREAM_HTTP_CLIENT", "requests")
    with pytest.raises(ConfigError, match=r"\$SIDECAR_UPSTREAM_HTTP_CLIENT: expected one of lean, aiohttp"):
        make_config().upstream_http_client  # noqa: B018


def test_a_bad_setting_is_a_start_up_error_naming_its_path(make_config):
    with pytest.raises(ConfigError, match=r"general_settings\.upstream_http_client"):
        make_config({"general_settings": {"upstream_http_client": "httpx"}})


@pytest.mark.parametrize("name", sorted(CLIENTS))
async def test_an_upstream_whose_certificate_is_not_trusted_is_a_502_saying_so(name, make_client, aiohttp_server):
    ca = trustme.CA()  # (not one the system trusts)
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    reached: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    server = await aiohttp_server(app, ssl=server_ssl)
    base = f"https://127.0.0.1:{server.port}/v1"
    client = await make_client({"model_list": [dep("gpt", "openai/gpt-4o-mini", base)],
                                "general_settings": {"upstream_http_client": name}})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "gpt", "messages": user("hi")})
    assert status == 502, answer
    assert answer["error"]["code"] == "upstream_unreachable"
    assert "TLS certificate was not accepted" in answer["error"]["message"]
    assert "127.0.0.1" not in answer["error"]["message"] and not reached


@pytest.mark.parametrize("name", sorted(CLIENTS))
async def test_http_proxy_from_the_environment_carries_the_call_and_no_proxy_bypasses_it(
        name, make_client, openai_fake, aiohttp_server, monkeypatch):
    """Either client sends an http upstream's call through ``HTTP_PROXY`` (absolute-form, with the
    proxy URL's credentials); ``NO_PROXY`` names hosts that go direct."""
    seen: list[tuple[str, str | None]] = []

    async def forward(request: web.Request) -> web.Response:  # a proxy that answers for the upstream
        seen.append((str(request.url), request.headers.get("Proxy-Authorization")))
        return web.json_response({"id": "chatcmpl-p", "object": "chat.completion", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "via proxy"}}]})

    proxy_app = web.Application()
    proxy_app.router.add_route("*", "/{tail:.*}", forward)
    proxy = await aiohttp_server(proxy_app)
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://u:p@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the fake upstream below is reached directly
    client = await make_client({"model_list": [dep("far", "openai/gpt-4o-mini", "http://upstream.invalid:9/v1"),
                                               dep("near", "openai/gpt-4o-mini", openai_fake.base_url)],
                                "general_settings": {"upstream_http_client": name}})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "far", "messages": user("hi")})
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"] == "via proxy"
    assert seen == [("http://upstream.invalid:9/v1/chat/completions", "Basic dTpw")]
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "near", "messages": user("hi")})
    assert status == 200 and answer["choices"][0]["message"]["content"] == f"{openai_fake.greeting} hi"
    assert len(seen) == 1


@pytest.mark.parametrize("name", sorted(CLIENTS))
async def test_a_proxy_that_fails_is_a_502_naming_the_proxy_not_its_address(name, make_client, monkeypatch):
    """A proxy that cannot be reached (``HTTP_PROXY``) or refuses the tunnel (``HTTPS_PROXY``,
    407): the client's 502 says the proxy failed, without its address or credentials."""
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                     b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    refusing = await asyncio.start_server(refuse, "127.0.0.1", 0)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # (bound, never listening: connecting is refused)
    try:
        for var in PROXY_VARS:
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://pxuser:pxsecret@127.0.0.1:{closed.getsockname()[1]}")
        monkeypatch.setenv("HTTPS_PROXY", f"http://pxuser:pxsecret@127.0.0.1:{refusing.sockets[0].getsockname()[1]}")
        client = await make_client({"model_list": [dep("plain", "openai/gpt-4o-mini", "http://upstream.invalid:9/v1"),
                                                   dep("tls", "openai/gpt-4o-mini", "https://upstream.invalid/v1")],
                                    "general_settings": {"upstream_http_client": name}})
        for model in ("plain", "tls"):
            status, answer, _ = await post(client, "/v1/chat/completions", {"model": model, "messages": user("hi")})
            assert status == 502, answer
            error = answer["error"]
            assert error["code"] == "upstream_unreachable"
            assert "through the environment's proxy" in error["message"], error
            assert "127.0.0.1" not in error["message"] and "pxsecret" not in error["message"]
            assert "pxuser" not in error["message"]
        assert "407" in error["message"]  # (the tunnel's refusal: the proxy's status)
    finally:
        closed.close()
        refusing.close()
