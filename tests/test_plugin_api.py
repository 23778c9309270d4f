"""The plugin API: what ``sidecar`` exports, that the built-in plugins use nothing else of the
core, that docs/plugins.md names it all, and the upstream helpers a provider builds on."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web

import sidecar
from sidecar import ProviderError, iter_bytes, iter_sse_payloads, open_stream, post_json, timeout_for

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_SOURCES = sorted([*ROOT.glob("plugins/*/sidecar_*/*.py"), *ROOT.glob("tests/example_plugin/sidecar_*/*.py")])


def test_every_exported_name_resolves_and_stands_in_its_modules_all():
    for name in sidecar.__all__:
        assert getattr(sidecar, name) is not None, name
    for name, (module, attr) in sidecar._LAZY.items():
        mod = importlib.import_module(module)
        if hasattr(mod, "__all__"):
            assert attr in mod.__all__, (module, attr)


def test_import_sidecar_loads_no_wire_or_http_module():
    code = "import sys, sidecar; print(sorted(m for m in ('sidecar.wire', 'sidecar.upstream', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_built_in_plugins_import_only_sidecar_itself(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            assert not node.module.startswith("sidecar."), f"{path.name}:{node.lineno} imports {node.module}"
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("sidecar.") for a in node.names), f"{path.name}:{node.lineno}"


def test_the_plugin_guide_names_every_export():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    missing = [name for name in sidecar.__all__ if name != "__version__" and f"`{name}" not in guide]
    assert not missing, missing


# ---------------------------------------------------------------- upstream helpers


def _teapot_error(status: int, body: bytes, provider: str, headers) -> ProviderError:
    """A provider's own error reader: this upstream says ``{"fault": {"why": ...}}``."""
    why = msgspec.json.decode(body)["fault"]["why"]
    return ProviderError(status, f"{provider} upstream answered {status}: {why}", kind="rate_limit",
                         headers={"Retry-After": headers.get("Retry-After", "")})


@pytest.fixture
async def odd_upstream(aiohttp_server):
    async def fail(request: web.Request) -> web.Response:
        return web.json_response({"fault": {"why": "busy brewing"}}, status=418, headers={"Retry-After": "7"})

    async def frames(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(3):
            await resp.write(bytes([i]) * 4)
        await resp.write_eof()
        return resp

    async def events(request: web.Request) -> web.StreamResponse:
        """Another provider's SSE: ``event:`` lines, a comment, a payload split across writes,
        then ``[DONE]`` and what follows it (never read)."""
        resp = web.StreamResponse()
        await resp.prepare(request)
        for piece in (b'event: start\ndata: {"type": "a"}\n\n: ping\n\ndata: {"ty', b'pe": "b"}\n\n',
                      b"data: [DONE]\n\ndata: {\"type\": \"after\"}\n\n"):
            await resp.write(piece)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/fail", fail)
    app.router.add_post("/frames", frames)
    app.router.add_post("/events", events)
    return await aiohttp_server(app)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_providers_own_error_parser_reads_its_error_bodies(odd_upstream, stream):
    async with aiohttp.ClientSession() as session:
        url = str(odd_upstream.make_url("/fail"))
        with pytest.raises(ProviderError) as caught:
            if stream:
                await open_stream(session, url, b"{}", {}, timeout_for({}, True), "teapot", parse_error=_teapot_error)
            else:
                await post_json(session, url, b"{}", {}, timeout_for({}, False), msgspec.json.Decoder(), "teapot",
                                parse_error=_teapot_error)
    err = caught.value
    assert "busy brewing" in err.message and err.kind == "rate_limit" and err.headers == {"Retry-After": "7"}


async def test_iter_sse_payloads_reads_any_providers_events_up_to_done(odd_upstream):
    async with aiohttp.ClientSession() as session:
        resp = await open_stream(session, str(odd_upstream.make_url("/events")), b"{}", {}, timeout_for({}, True), "x")
        got = [p for batch in [b async for b in iter_sse_payloads(resp, "x")] for p in batch]
    assert got == [b'{"type": "a"}', b'{"type": "b"}']


async def test_iter_bytes_relays_a_binary_stream_as_it_arrives(odd_upstream):
    async with aiohttp.ClientSession() as session:
        resp = await open_stream(session, str(odd_upstream.make_url("/frames")), b"{}", {}, timeout_for({}, True), "x")
        got = b"".join([piece async for piece in iter_bytes(resp, "x")])
    assert got == b"\x00" * 4 + b"\x01" * 4 + b"\x02" * 4


# ---------------------------------------------------------------- supported params per capability


class _PerCapability(sidecar.Provider):
    """Takes ``user`` on embeddings only: per capability, one list no longer serves both."""

    name = "percap"
    capabilities = frozenset({"chat", "embedding"})

    def supported_openai_params(self, model, capability=None):
        return ["user", "encoding_format"] if capability == "embedding" else ["temperature"]

    async def chat(self, call):
        return sidecar.ChatCompletion(id="c1", model=call.model, choices=[sidecar.Choice(
            index=0, message=sidecar.ResponseMessage(content="ok"), finish_reason="stop")])

    async def embeddings(self, call):
        return sidecar.EmbeddingResponse(data=[sidecar.Embedding(index=0, embedding=sidecar.raw_vector([0.5]))],
                                         model=call.model)


class _PerCapabilityPlugin:
    @sidecar.hookimpl
    def sidecar_providers(self):
        return [_PerCapability()]


async def test_supported_params_answer_per_capability(aiohttp_client, make_config):
    from openai_helpers import post, user

    from sidecar.app import create_app
    from sidecar.plugins import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_PerCapabilityPlugin())
    client = await aiohttp_client(create_app(make_config({"model_list": [
        {"model_name": "m", "litellm_params": {"model": "percap/x"}}]}), pm=pm))
    status, body, _ = await post(client, "/v1/embeddings", {"model": "m", "input": "hi", "user": "u1"})
    assert status == 200, body
    status, body, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi"), "user": "u1"})
    assert status == 400 and body["error"]["param"] == "user", body


class _OldForm(_PerCapability):
    """A provider written against the contract before issue 11: one list of params for all."""

    def __init__(self, name: str = "oldform") -> None:
        self.name = name

    def supported_openai_params(self, model):
        return ["temperature", "dimensions"]

    async def chat(self, call):
        return sidecar.ChatCompletion(id="c1", model=call.model, choices=[sidecar.Choice(
            index=0, message=sidecar.ResponseMessage(content=f"t={call.body.get('temperature')}"), finish_reason="stop")])


class _OldFormPlugin:
    @sidecar.hookimpl
    def sidecar_providers(self):
        return [_OldForm(), _OldForm("oldform2")]


async def test_a_provider_with_the_one_argument_form_loads_serves_and_warns_once_per_class(aiohttp_client, make_config):
    from openai_helpers import post, user

    from sidecar.app import create_app
    from sidecar.plugins import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_OldFormPlugin())
    with pytest.warns(DeprecationWarning) as caught:
        app = create_app(make_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "oldform/x"}}]}),
                         pm=pm)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(messages) == 1, messages  # one per class, not per provider
    assert "test_plugin_api._OldForm.supported_openai_params(self, model) is deprecated" in messages[0]
    assert "supported_openai_params(self, model: str, capability: str | None = None)" in messages[0]
    client = await aiohttp_client(app)
    status, body, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi"), "temperature": 0.5})
    assert status == 200 and body["choices"][0]["message"]["content"] == "t=0.5", body
    status, body, _ = await post(client, "/v1/embeddings", {"model": "m", "input": "hi", "dimensions": 1})
    assert status == 200, body  # its one list serves every capability


def test_the_current_form_does_not_warn():
    import warnings

    from sidecar.plugins import collect_providers, get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_PerCapabilityPlugin())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(collect_providers(pm)) == ["percap"]


def test_the_one_argument_form_still_serves_every_capability():
    from sidecar.provider import supported_params

    class Old(sidecar.Provider):
        name = "old"

        def supported_openai_params(self, model):
            return ["temperature"]

    class New(sidecar.Provider):
        name = "new"

        def supported_openai_params(self, model, capability=None):
            return ["dimensions"] if capability == "embedding" else ["temperature"]

    assert supported_params(Old(), "x", "embedding") == supported_params(Old(), "x", "chat") == ["temperature"]
    assert supported_params(New(), "x", "embedding") == ["dimensions"]
    assert supported_params(New(), "x", "chat") == ["temperature"]


# ---------------------------------------------------------------- ApiAccess


def test_api_access_reads_params_then_the_environment_and_says_what_came_from_it(monkeypatch):
    monkeypatch.setenv("TEAPOT_KEY", "tk-env-0123456789")
    monkeypatch.setenv("TEAPOT_BASE", "http://env.example:8080/v1/brew/")
    access = sidecar.ApiAccess("teapot", key_envs=("TEAPOT_OTHER_KEY", "TEAPOT_KEY"), base_envs=("TEAPOT_BASE",),
                               default_base="https://teapot.example", endpoints=("/v1/brew", "/v1"))
    assert (access.key({}), access.base({})) == ("tk-env-0123456789", "http://env.example:8080/v1/brew/")
    assert access.ambient({}) == ["tk-env-0123456789", "http://env.example:8080/v1/brew/"]
    assert str(access.url({}, "/v1/brew")) == "http://env.example:8080/v1/brew"  # (the ending is not doubled)
    own = {"api_key": "tk-own", "base_url": "https://own.example"}
    assert (access.key(own), access.base(own), access.ambient(own)) == ("tk-own", "https://own.example", [])
    theirs = {"api_base": "https://client.example", sidecar.NO_AMBIENT_CREDENTIALS: True}
    assert (access.key(theirs), access.ambient(theirs)) == (None, [])  # the client's server gets no env key
    headers = access.headers({"api_key": "tk-own", "extra_headers": {"X-Pot": 1}}, {"Accept": "application/json"})
    assert headers == {"Content-Type": "application/json", "Accept": "application/json",
                       "Authorization": "Bearer tk-own", "X-Pot": "1"}
    with pytest.raises(ProviderError) as bad:
        access.url({"api_base": "http://host:99999"}, "/v1/brew")
    assert (bad.value.status, bad.value.param, bad.value.code) == (400, "api_base", "invalid_api_base")


def test_api_access_without_a_default_base_or_a_required_key_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("KETTLE_KEY", raising=False)
    monkeypatch.delenv("KETTLE_BASE", raising=False)
    access = sidecar.ApiAccess("kettle", key_envs=("KETTLE_KEY",), base_envs=("KETTLE_BASE",), key_header="x-api-key",
                               key_prefix="", key_required=True)
    with pytest.raises(ProviderError, match=r"kettle needs litellm_params\.api_base \(or \$KETTLE_BASE\)") as caught:
        access.url({}, "/boil")
    assert caught.value.param == "api_base" and caught.value.status == 400
    with pytest.raises(ProviderError, match=r"kettle needs an API key: litellm_params\.api_key, \$KETTLE_KEY") as caught:
        access.headers({})
    assert caught.value.status == 401 and caught.value.kind == "auth"
    assert access.headers({"api_key": "k1"})["x-api-key"] == "k1"
