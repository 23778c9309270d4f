"""The hooks beyond providers, over HTTP: pre-call rewrites and refusals, one finished-call event
per attempt (delivered off the request path), plugin routes, start-up work and CLI commands."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from gateway_helpers import until
from openai_helpers import KEY, assert_envelope, dep, post, stream, user
from test_router_failures import group

from sidecar import CallEvent, PreCall, SidecarError, hookimpl, hookspecs, keys, public
from sidecar.config import ConfigError
from sidecar.plugins import get_plugin_manager

CHAT = "/v1/chat/completions"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def manager(*plugins: object):
    """The installed plugins (providers included) plus ``plugins``, on a fresh manager."""
    pm = get_plugin_manager()
    for plugin in plugins:
        pm.register(plugin)
    return pm


class Recorder:
    """Collects every CallEvent; sync or async."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    @hookimpl
    def sidecar_call_finished(self, event: CallEvent) -> None:
        self.events.append(event)


class AsyncRecorder(Recorder):
    @hookimpl
    async def sidecar_call_finished(self, event: CallEvent, app: web.Application) -> None:
        assert app[keys.HOOKS].events is not None
        await asyncio.sleep(0)
        self.events.append(event)


class BatchRecorder:
    """Collects the same events through ``sidecar_calls_finished``, a batch at a time; the plain
    one is called on the event loop itself."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.batches = 0

    @hookimpl
    def sidecar_calls_finished(self, events: list[CallEvent], app: web.Application) -> None:
        asyncio.get_running_loop()  # (raises RuntimeError anywhere but on the loop)
        assert app[keys.HOOKS].events is not None
        self.batches += 1
        self.events += events


class AsyncBatchRecorder(BatchRecorder):
    @hookimpl
    async def sidecar_calls_finished(self, events: list[CallEvent]) -> None:
        await asyncio.sleep(0)
        self.batches += 1
        self.events += events


# ---------------------------------------------------------------- sidecar_pre_call


class SyncRedactor:
    @hookimpl
    def sidecar_pre_call(self, call: PreCall) -> None:
        for message in call.body["messages"]:
            message["content"] = re.sub(r"\d{3}-\d{2}-\d{4}", "[SSN]", message["content"])


class TeamDefaults:
    @hookimpl
    async def sidecar_pre_call(self, call: PreCall, app: web.Application) -> dict[str, Any]:
        assert call.group == "g" and call.capability == "chat" and call.headers["x-team"] == "blue"
        return {**call.body, "temperature": call.body.get("temperature", 0.1)}


class Guardrail:
    @hookimpl
    def sidecar_pre_call(self, call: PreCall) -> None:
        if "forbidden" in str(call.body["messages"]):
            raise SidecarError(403, "blocked by the guardrail", code="guardrail_blocked")


async def test_pre_call_hooks_rewrite_the_body_that_goes_upstream(make_client, openai_fake):
    pm = manager(SyncRedactor(), TeamDefaults())
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)}, pm=pm)
    resp = await client.post(CHAT, json={"model": "g", "messages": user("my ssn is 123-45-6789")},
                             headers={"x-team": "blue"})
    assert resp.status == 200, await resp.text()
    sent = openai_fake.last.body
    assert sent["messages"] == [{"role": "user", "content": "my ssn is [SSN]"}]
    assert sent["temperature"] == 0.1


async def test_a_pre_call_hook_refuses_with_its_status_and_no_upstream_call(make_client, openai_fake):
    recorder = Recorder()
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)},
                               pm=manager(Guardrail(), recorder))
    status, body, headers = await post(client, CHAT, {"model": "g", "messages": user("something forbidden")})
    assert status == 403
    assert assert_envelope(body)["code"] == "guardrail_blocked"
    assert openai_fake.hits("good") == 0
    await until(lambda: recorder.events, what="the refusal's event")
    (event,) = recorder.events
    assert (event.ok, event.status, event.final, event.deployment_id) == (False, 403, True, None)
    assert event.call_id == headers["x-litellm-call-id"]


# ---------------------------------------------------------------- sidecar_call_finished


@pytest.mark.parametrize("recorder_type", [Recorder, AsyncRecorder, BatchRecorder, AsyncBatchRecorder],
                         ids=["sync", "async", "batch", "async-batch"])
async def test_every_attempt_of_a_retried_fallen_back_stream_is_an_event(make_client, openai_fake, recorder_type):
    recorder = recorder_type()
    entries = group("main", "flaky", "error-503", base=openai_fake.base_url, num_retries=1)
    entries[0]["litellm_params"]["order"] = 1
    entries[1]["litellm_params"]["order"] = 2
    openai_fake.script["flaky"] = ["error-500"]
    client = await make_client({
        "model_list": entries + group("backup", "good", base=openai_fake.base_url),
        "router_settings": {"fallbacks": [{"main": ["backup"]}], "disable_cooldowns": True},
    }, pm=manager(recorder))
    body = {"model": "main", "messages": user("hello there"), "stream_options": {"include_usage": True},
            "metadata": {"tag": "t1"}, "user": "u-1"}
    resp, events = await stream(client, body)
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    await until(lambda: len(recorder.events) == 3, what="three events")
    first, second, third = recorder.events
    call_id = resp.headers["x-litellm-call-id"]
    assert {e.call_id for e in recorder.events} == {call_id}
    assert [(e.attempt, e.group, e.ok, e.retry, e.fallback, e.final) for e in recorder.events] == [
        (1, "main", False, False, False, False),
        (2, "main", False, True, False, False),
        (3, "backup", True, False, True, True),
    ]
    assert (first.deployment_id, first.status, first.upstream_status, first.error_kind) == ("dep-flaky", 502, 500,
                                                                                              "server")
    assert (second.deployment_id, second.upstream_status) == ("dep-error-503", 503)
    # each failed attempt's upstream time is its own: the second began after the first ended
    assert 0 < first.upstream_duration <= first.duration
    assert 0 < second.upstream_duration <= second.duration - first.upstream_duration + 1e-6
    assert all(e.requested_group == "main" and e.stream and e.capability == "chat" for e in recorder.events)
    assert third.deployment_id == "dep-good" and third.provider == "openai" and third.model == "good"
    usage = events[-1]["usage"]
    assert (third.prompt_tokens, third.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert third.cost is not None and third.cost >= 0
    assert third.time_to_first_token is not None and 0 < third.time_to_first_token <= third.duration
    assert third.metadata == {"tag": "t1"} and third.user == "u-1"


async def test_a_plain_answers_event_carries_its_usage_and_the_cost_header(make_client, openai_fake):
    recorder = Recorder()
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)}, pm=manager(recorder))
    status, body, headers = await post(client, CHAT, {"model": "g", "messages": user("hi")})
    assert status == 200
    await until(lambda: recorder.events, what="the event")
    (event,) = recorder.events
    assert event.ok and event.final and not event.stream and event.status == 200
    assert event.total_tokens == body["usage"]["total_tokens"]
    assert event.cost == float(headers["x-litellm-response-cost"])
    assert event.time_to_first_token is None


class Raising:
    @hookimpl
    def sidecar_call_finished(self, event: CallEvent) -> None:
        raise RuntimeError("this plugin is broken")


class RaisingBatch:
    @hookimpl
    def sidecar_calls_finished(self, events: list[CallEvent]) -> None:
        raise RuntimeError("this batch plugin is broken")


class Blocking:
    """Blocks in the hook until told to go: a slow plugin, without timing anything."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.seen = 0

    @hookimpl
    def sidecar_call_finished(self, event: CallEvent) -> None:
        self.go.wait(30)
        self.seen += 1


class SlowAsync:
    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.seen = 0

    @hookimpl
    async def sidecar_call_finished(self, event: CallEvent) -> None:
        await self.go.wait()
        self.seen += 1


async def test_failing_and_stuck_hooks_leave_answers_untouched(make_client, openai_fake, caplog):
    blocking, slow, recorder, batches = Blocking(), SlowAsync(), Recorder(), BatchRecorder()
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)},
                               pm=manager(Raising(), RaisingBatch(), blocking, slow, recorder, batches))
    try:
        for _ in range(3):  # each answered while both slow hooks are still stuck on the first event
            status, body, _ = await post(client, CHAT, {"model": "g", "messages": user("hi")})
            assert status == 200 and body["choices"][0]["message"]["content"]
        _, events = await stream(client, {"model": "g", "messages": user("hi")})
        assert events
        assert blocking.seen == 0 and slow.seen == 0
    finally:
        blocking.go.set()
        slow.go.set()
    await until(lambda: blocking.seen == 4 and slow.seen == 4 and len(recorder.events) == 4, what="every delivery")
    assert [e.call_id for e in batches.events] == [e.call_id for e in recorder.events]
    assert "sidecar_call_finished failed: RuntimeError: this plugin is broken" in caplog.text
    assert "sidecar_calls_finished failed: RuntimeError: this batch plugin is broken" in caplog.text


async def test_events_beyond_the_bound_are_dropped_counted_and_logged(make_client, openai_fake, caplog):
    blocking = Blocking()
    config = {"model_list": group("g", "good", base=openai_fake.base_url),
              "general_settings": {"max_pending_events": 2}}
    client = await make_client(config, pm=manager(blocking))
    bus = client.app[keys.HOOKS].events
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar"):
            for _ in range(5):
                assert (await post(client, CHAT, {"model": "g", "messages": user("hi")}))[0] == 200
    finally:
        blocking.go.set()
    assert bus.dropped == 3
    assert "sidecar_call_finished is behind" in caplog.text
    await until(lambda: blocking.seen == 2, what="the two kept events")


async def test_no_listener_means_no_bus_and_no_pre_call(make_client):
    from conftest import MOCK_MODELS

    # the installed plugins, with the one listener on by default (the spend log) turned off
    client = await make_client({"model_list": MOCK_MODELS, "general_settings": {"disable_spend_logs": True}})
    hooks = client.app[keys.HOOKS]
    assert hooks.events is None and hooks.pre_call is None
    router = client.app[keys.ROUTER]
    assert router.events is None and router.pre_call is None


async def test_a_batch_members_events_are_marked(make_client, openai_fake):
    recorder = Recorder()
    client = await make_client({"model_list": group("a", "good", base=openai_fake.base_url)
                                + group("b", "error-400", base=openai_fake.base_url)}, pm=manager(recorder))
    status, body, _ = await post(client, CHAT, {"model": "a,b", "messages": user("hi")})
    assert status == 200 and len(body) == 2
    await until(lambda: len(recorder.events) == 2, what="both members' events")
    by_group = {e.group: e for e in recorder.events}
    assert by_group["a"].batch and by_group["a"].ok
    assert by_group["b"].batch and not by_group["b"].ok and by_group["b"].final and by_group["b"].status == 400


# ---------------------------------------------------------------- routes, start-up, commands


class Extras:
    def __init__(self) -> None:
        self.started_with: web.Application | None = None

    @hookimpl
    def sidecar_routes(self, app: web.Application) -> list[web.RouteDef]:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"hello": request.app[keys.STATE].ready})

        async def secret(request: web.Request) -> web.Response:
            return web.json_response({"secret": True})

        return [web.get("/hello", public(hello)), web.get("/secret", secret)]

    @hookimpl
    async def sidecar_startup(self, app: web.Application) -> None:
        assert app[keys.STATE].ready  # the database is open by now
        self.started_with = app


async def test_plugin_routes_are_served_behind_the_master_key_unless_public(make_client, make_config):
    extras = Extras()
    client = await make_client({"model_list": [], "general_settings": {"master_key": "sk-master"}}, pm=manager(extras))
    assert extras.started_with is client.app
    resp = await client.get("/hello")
    assert resp.status == 200 and await resp.json() == {"hello": True}
    resp = await client.get("/secret")
    assert resp.status == 401
    assert_envelope(await resp.json())
    resp = await client.get("/secret", headers={"Authorization": "Bearer sk-master"})
    assert await resp.json() == {"secret": True}


class Clash:
    @hookimpl
    def sidecar_routes(self) -> list[web.RouteDef]:
        async def mine(request: web.Request) -> web.Response:
            return web.Response(text="mine")

        return [web.get("/v1/models", mine)]


def test_a_plugin_route_that_clashes_stops_start_up(make_config):
    from sidecar.app import create_app

    with pytest.raises(ConfigError, match=r"sidecar_routes adds GET /v1/models, which is already served"):
        create_app(make_config(), pm=manager(Clash()))


class BrokenStartup:
    @hookimpl
    def sidecar_startup(self) -> None:
        raise RuntimeError("no connection")


async def test_a_failing_startup_hook_stops_start_up_naming_the_plugin(aiohttp_client, make_config):
    from sidecar.app import create_app

    pm = manager()
    pm.register(BrokenStartup(), name="broken-startup")
    with pytest.raises(ConfigError, match=r"plugin 'broken-startup': sidecar_startup failed: RuntimeError: no connection"):
        await aiohttp_client(create_app(make_config(), pm=pm))


class Command:
    @hookimpl
    def sidecar_commands(self, subparsers: argparse._SubParsersAction) -> None:
        hello = subparsers.add_parser("hello", help="say hello")
        hello.add_argument("--name", default="world")
        hello.set_defaults(func=lambda args: print(f"hello {args.name}") or 3)


def test_plugin_commands_join_the_cli(monkeypatch, capsys):
    from sidecar import cli, plugins

    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: manager(Command()))
    assert cli.main(["hello", "--name", "sidecar"]) == 3
    assert capsys.readouterr().out == "hello sidecar\n"
    cli.build_parser().parse_args(["serve"])  # the built-in commands are still there


# ---------------------------------------------------------------- the spec itself


def hookspec_names() -> list[str]:
    return sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
                  if name.startswith("sidecar_"))


@pytest.mark.parametrize("name", hookspec_names())
def test_every_hookspec_is_documented_in_the_plugin_guide(name):
    assert re.search(rf"^### `{name}\(", DOCS.read_text(), re.MULTILINE), f"docs/plugins.md has no section for {name}"


def test_every_hookspec_has_a_docstring_and_the_project_prefix():
    for name in hookspec_names():
        assert getattr(hookspecs, name).__doc__, name
    marked = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "llm_sidecar_spec")]
    assert sorted(marked) == hookspec_names()


async def test_an_upstream_key_never_reaches_an_event(make_client, openai_fake):
    recorder = Recorder()
    client = await make_client({"model_list": [dep("g", "openai/error-401", openai_fake.base_url)]},
                               pm=manager(recorder))
    status, _, _ = await post(client, CHAT, {"model": "g", "messages": user("hi")})
    assert status == 401
    await until(lambda: recorder.events, what="the event")
    import msgspec

    assert KEY not in msgspec.json.encode(recorder.events[0]).decode()


class Tracer:
    @hookimpl
    def sidecar_pre_call(self, call: PreCall) -> None:
        from sidecar import add_upstream_headers

        add_upstream_headers({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
        add_upstream_headers({"x-call": call.call_id})


async def test_headers_a_pre_call_hook_adds_go_upstream_with_that_request_only(make_client, openai_fake):
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)}, pm=manager(Tracer()))
    status, _, headers = await post(client, CHAT, {"model": "g", "messages": user("hi")})
    assert status == 200
    sent = openai_fake.last.headers
    assert sent["traceparent"] == f"00-{'ab' * 16}-{'cd' * 8}-01"
    assert sent["x-call"] == headers["x-litellm-call-id"]
    status, _, headers = await post(client, CHAT, {"model": "g", "messages": user("again")})
    assert openai_fake.last.headers["x-call"] == headers["x-litellm-call-id"]  # its own, not the last request's


async def test_config_callbacks_are_served_by_the_plugin_of_that_name(make_client, caplog):
    class Named:
        @hookimpl
        def sidecar_call_finished(self, event: CallEvent) -> None:
            pass

    pm = manager()
    pm.register(Named(), name="mylogger")
    with caplog.at_level(logging.WARNING, logger="sidecar"):
        client = await make_client({"model_list": [], "litellm_settings": {
            "callbacks": ["mylogger", "langfuse"], "success_callback": ["mylogger"]}}, pm=pm)
    assert "litellm_settings callbacks langfuse: no installed plugin is registered under that name" in caplog.text
    body = await (await client.get("/health/readiness")).json()
    assert body["success_callbacks"] == ["mylogger"]
    from sidecar import callback_enabled

    assert callback_enabled(client.app, "mylogger") and not callback_enabled(client.app, "prometheus")


class OnWhenConfigured:
    """Registers its recorder only for apps whose config names it (pytest's configure pattern)."""

    def __init__(self) -> None:
        self.recorders: list[Recorder] = []

    @hookimpl
    def sidecar_configure(self, app: web.Application, pm) -> None:
        from sidecar import callback_enabled

        if callback_enabled(app, "recorder"):
            self.recorders.append(Recorder())
            pm.register(self.recorders[-1])


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_plugin_configured_off_costs_nothing(make_client, openai_fake, enabled):
    plugin = OnWhenConfigured()
    config = {"model_list": group("g", "good", base=openai_fake.base_url),
              "litellm_settings": {"callbacks": ["recorder"] if enabled else []}}
    client = await make_client(config, pm=manager(plugin))
    events = client.app[keys.HOOKS].events  # (built-in plugins may listen too: spendlog is on by default)
    impls = [*events.sync_impls, *events.async_impls] if events is not None else []
    assert [i.function.__self__ for i in impls if isinstance(getattr(i.function, "__self__", None), Recorder)] \
        == plugin.recorders
    assert (await post(client, CHAT, {"model": "g", "messages": user("hi")}))[0] == 200
    if enabled:
        await until(lambda: plugin.recorders[0].events, what="the event")
    else:
        assert plugin.recorders == []
