"""The ``otel`` plugin: spans reach an in-process OTLP/HTTP collector (protobuf, as a real
collector receives them) with the client's trace, one child per upstream attempt, GenAI
attributes, and the request's context sent upstream as ``traceparent``. Off, or without the SDK,
nothing from OpenTelemetry is imported."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from conftest import MOCK_MODELS
from gateway_helpers import Server, until, write_config
from openai_helpers import KEY, WAIT, post, user
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from test_router_failures import group

from sidecar import keys
from sidecar_otel.exporting import ExportPlan, plan

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACESTATE = "vendor=opaque-value"
TOLERANCE_NS = 2_000_000  # the spans' times come from two clocks (wall and monotonic)


@dataclass
class Got:
    """One span as the collector decoded it."""

    span: Span
    resource: dict[str, Any]
    scope: str

    @property
    def attrs(self) -> dict[str, Any]:
        return _attrs(self.span.attributes)

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent(self) -> str:
        return self.span.parent_span_id.hex()

    @property
    def failed(self) -> bool:
        return self.span.status.code == Status.STATUS_CODE_ERROR


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attrs(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


class Collector:
    """OTLP/HTTP's ``POST /v1/traces``: ``ExportTraceServiceRequest`` in, the empty response out."""

    def __init__(self) -> None:
        self.spans: list[Got] = []
        self.bodies: list[bytes] = []
        self.headers: list[Any] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/traces", self.traces)
        self.server: Any = None

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        raw = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        message = ExportTraceServiceRequest()
        message.ParseFromString(raw)
        self.bodies.append(raw)
        self.headers.append(request.headers)
        for resource_spans in message.resource_spans:
            resource = _attrs(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans += [Got(s, resource, scope_spans.scope.name) for s in scope_spans.spans]
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[Got]:
        return [g for g in self.spans if g.trace_id == trace_id]


@pytest.fixture
async def collector(aiohttp_server, monkeypatch) -> Collector:
    """The collector, and the standard variables pointing the sidecar at it (set up before the
    sidecar, so it is still there when the sidecar's last spans are flushed at its shutdown)."""
    found = Collector()
    found.server = await aiohttp_server(found.app, access_log=None)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", str(found.server.make_url("")).rstrip("/"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0k%20en")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "sidecar-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # ms: export at once rather than every 5 s
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER",
                 "OTEL_ENDPOINT", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    return found


def sdk(client: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="anything", max_retries=0, timeout=WAIT,
                              http_client=openai.DefaultAsyncHttpxClient(trust_env=False))


def otel(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "litellm_settings": {"callbacks": ["otel"]}}


def assert_within(inner: Got, outer: Got) -> None:
    assert outer.span.start_time_unix_nano - TOLERANCE_NS <= inner.span.start_time_unix_nano
    assert inner.span.start_time_unix_nano <= inner.span.end_time_unix_nano
    assert inner.span.end_time_unix_nano <= outer.span.end_time_unix_nano + TOLERANCE_NS


def assert_no_secret(collector: Collector, *secrets: str) -> None:
    for raw in collector.bodies:
        for secret in secrets:
            assert secret.encode() not in raw, secret


# ---------------------------------------------------------------- a retried, fallen-back request


async def test_a_retried_fallen_back_request_is_one_trace_under_the_clients_span(collector, make_client, openai_fake):
    entries = group("main", "flaky", "error-503", base=openai_fake.base_url, num_retries=1)
    entries[0]["litellm_params"]["order"] = 1
    entries[1]["litellm_params"]["order"] = 2
    openai_fake.script["flaky"] = ["error-500"]
    client = await make_client(otel({
        "model_list": entries + group("backup", "good", base=openai_fake.base_url),
        "router_settings": {"fallbacks": [{"main": ["backup"]}], "disable_cooldowns": True},
    }))
    raw = await sdk(client).chat.completions.with_raw_response.create(
        model="main", messages=user("hello"), temperature=0.2, max_tokens=50,
        extra_headers={"traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01", "tracestate": TRACESTATE})
    completion = raw.parse()
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    await until(lambda: len(collector.trace(TRACE)) == 4, what="the request's span and its three attempts")

    (request,) = [g for g in collector.trace(TRACE) if g.span.kind == Span.SPAN_KIND_SERVER]
    assert request.parent == CLIENT_SPAN  # a child of the client's span, in the client's trace
    assert request.span.name == "chat main"
    assert request.scope == "sidecar_otel"
    assert request.resource["service.name"] == "sidecar-test"
    attrs = request.attrs
    assert attrs["sidecar.call_id"] == raw.headers["x-litellm-call-id"]
    assert (attrs["gen_ai.operation.name"], attrs["gen_ai.request.model"]) == ("chat", "main")
    assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.max_tokens"]) == (0.2, 50)
    assert (attrs["gen_ai.provider.name"], attrs["gen_ai.response.model"]) == ("openai", "good")
    assert (attrs["sidecar.model_group"], attrs["sidecar.attempts"], attrs["sidecar.fallback"]) == ("backup", 3, True)
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["sidecar.cost"] == float(raw.headers["x-litellm-response-cost"])
    assert attrs["http.response.status_code"] == 200 and not request.failed

    attempts = sorted((g for g in collector.trace(TRACE) if g.span.kind == Span.SPAN_KIND_CLIENT),
                      key=lambda g: g.span.start_time_unix_nano)
    assert [a.span.name for a in attempts] == ["chat flaky", "chat error-503", "chat good"]
    for attempt in attempts:
        assert attempt.parent == request.span_id
        assert_within(attempt, request)
        assert attempt.attrs["gen_ai.request.temperature"] == 0.2 and attempt.attrs["gen_ai.operation.name"] == "chat"
        assert attempt.attrs["gen_ai.provider.name"] == attempt.attrs["gen_ai.system"] == "openai"
    for before, after in zip(attempts, attempts[1:]):  # one after the other
        assert before.span.end_time_unix_nano <= after.span.start_time_unix_nano + TOLERANCE_NS
    first, second, third = (a.attrs for a in attempts)
    assert [a.failed for a in attempts] == [True, True, False]
    assert (first["error.type"], first["http.response.status_code"], first["sidecar.deployment_id"]) == (
        "server", 500, "dep-flaky")
    assert attempts[0].span.status.message  # the error's message (credentials masked)
    assert (second["http.response.status_code"], second["sidecar.retry"]) == (503, True)
    assert "error.type" in second and "gen_ai.response.model" not in second
    assert (third["gen_ai.request.model"], third["gen_ai.response.model"], third["sidecar.fallback"]) == (
        "good", "good", True)
    assert third["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert third["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert "error.type" not in third and third["sidecar.model_group"] == "backup"

    # every upstream call carried the request span's context, and the client's tracestate
    sent = [r.headers for r in openai_fake.received if r.path == "/v1/chat/completions"]
    assert len(sent) == 3
    assert {h["traceparent"] for h in sent} == {f"00-{TRACE}-{request.span_id}-01"}
    assert {h["tracestate"] for h in sent} == {TRACESTATE}

    assert {h.get("x-collector-token") for h in collector.headers} == {"t0k en"}  # OTEL_EXPORTER_OTLP_HEADERS
    host = str(openai_fake.server.make_url("")).split("//")[1].rstrip("/")
    assert_no_secret(collector, KEY, host)  # no api_key, no api_base anywhere in the export


# ---------------------------------------------------------------- streams, failures, new traces


async def test_streams_failures_and_requests_without_a_traceparent(collector, make_client, openai_fake):
    client = await make_client(otel({
        "model_list": group("g", "good", base=openai_fake.base_url) + group("bad", "error-400", base=openai_fake.base_url),
    }))
    unsampled = "a" * 32
    status, _, _ = await post_with(client, {"model": "g", "messages": user("quiet")},
                                   {"traceparent": f"00-{unsampled}-{CLIENT_SPAN}-00"})
    assert status == 200
    assert openai_fake.last.headers["traceparent"].startswith(f"00-{unsampled}-")  # passed on, still unsampled
    assert openai_fake.last.headers["traceparent"].endswith("-00")

    status, _, _ = await post_with(client, {"model": "g", "messages": user("odd")}, {"traceparent": "00-zz-nonsense"})
    assert status == 200  # a malformed traceparent is ignored: the request starts a trace of its own
    assert openai_fake.last.headers["traceparent"].split("-")[1] != "zz"
    chunks = [c async for c in await sdk(client).chat.completions.create(
        model="g", messages=user("stream it"), stream=True, stream_options={"include_usage": True})]
    streamed_trace = openai_fake.last.headers["traceparent"].split("-")[1]
    status, body, _ = await post(client, "/v1/chat/completions", {"model": "bad", "messages": user("hi")})
    assert status == 400
    failed_trace = openai_fake.last.headers["traceparent"].split("-")[1]
    status, _, _ = await post(client, "/v1/chat/completions", {"model": "nowhere", "messages": user("hi")})
    assert status == 404
    await until(lambda: len(collector.trace(streamed_trace)) == 2 and len(collector.trace(failed_trace)) == 2
                and any(g.span.name == "chat nowhere" for g in collector.spans), what="the three requests' spans")

    request, attempt = sorted(collector.trace(streamed_trace), key=lambda g: g.span.kind)  # SERVER (2), CLIENT (3)
    assert request.parent == "" and attempt.parent == request.span_id  # a new trace, rooted here
    assert request.attrs["gen_ai.request.stream"] is True and attempt.attrs["gen_ai.request.stream"] is True
    assert 0 < attempt.attrs["gen_ai.response.time_to_first_chunk"] <= request.attrs["gen_ai.response.time_to_first_chunk"]
    usage = chunks[-1].usage
    assert attempt.attrs["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attempt.attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert_within(attempt, request)

    request, attempt = sorted(collector.trace(failed_trace), key=lambda g: g.span.kind)
    assert request.failed and attempt.failed
    assert request.attrs["http.response.status_code"] == 400 and request.attrs["error.type"] == "bad_request"
    assert request.span.status.message == body["error"]["message"]
    assert attempt.attrs["http.response.status_code"] == 400

    (unknown,) = [g for g in collector.spans if g.span.name == "chat nowhere"]  # refused before any attempt
    assert unknown.failed and unknown.attrs["sidecar.attempts"] == 0 and unknown.attrs["error.type"] == "model_not_found"
    assert not [g for g in collector.spans if g.parent == unknown.span_id]
    assert collector.trace(unsampled) == []
    assert_no_secret(collector, KEY)


async def post_with(client: Any, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, Any]:
    resp = await client.post("/v1/chat/completions", json=body, headers=headers)
    return resp.status, await resp.json(), resp.headers


async def test_a_tracing_failure_never_fails_the_request(collector, make_client, openai_fake, caplog):
    from sidecar_otel import HOOKS_NAME

    client = await make_client(otel({"model_list": group("g", "good", base=openai_fake.base_url)}))

    def broken(call: Any) -> None:
        raise RuntimeError("tracer exploded")

    client.app[keys.PLUGIN_MANAGER].get_plugin(HOOKS_NAME).tracing.request_started = broken
    status, body, _ = await post(client, "/v1/chat/completions", {"model": "g", "messages": user("hi")})
    assert status == 200 and body["choices"]
    assert "otel: the request's span failed: RuntimeError: tracer exploded" in caplog.text


async def test_open_spans_are_flushed_at_shutdown(collector, make_client, openai_fake):
    client = await make_client(otel({"model_list": group("g", "good", base=openai_fake.base_url)}))
    status, _, headers = await post(client, "/v1/chat/completions", {"model": "g", "messages": user("hi")})
    assert status == 200
    await client.close()  # before the 20 ms schedule may have run: the shutdown flushes
    assert any(g.attrs.get("sidecar.call_id") == headers["x-litellm-call-id"] for g in collector.spans)


async def test_each_worker_of_sidecar_serve_exports_its_own_spans(collector, tmp_path):
    """The real ``sidecar serve --workers 2``: each worker starts its exporter after the fork."""
    cfg = write_config(tmp_path / "otel.yaml", {"model_list": MOCK_MODELS, "litellm_settings": {"callbacks": ["otel"]}})
    traces = [f"{n:032x}" for n in range(1, 9)]
    with Server(cfg, tmp_path, extra_args=("--workers", "2")) as server:
        await asyncio.to_thread(server.wait_ready)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            for trace in traces:  # fresh connections, which the kernel spreads over the workers
                async with session.post(server.url + "/v1/chat/completions",
                                        json={"model": "mock-gpt", "messages": user("hi")},
                                        headers={"traceparent": f"00-{trace}-{CLIENT_SPAN}-01"}) as resp:
                    assert resp.status == 200, await resp.text()
        await until(lambda: all(len(collector.trace(t)) == 2 for t in traces), what="every request's two spans")
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.proc.wait, 15) == 0
        assert "Traceback" not in server.output()
    assert {g.resource["service.name"] for g in collector.spans} == {"sidecar-test"}


def test_spans_whose_end_is_never_reported_are_bounded():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from sidecar import CallEvent, PreCall
    from sidecar_otel.spans import Tracing

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracing = Tracing(provider, max_open=2)

    def begin(call_id: str) -> None:
        tracing.request_started(PreCall(call_id=call_id, group="g", capability="chat", body={}, headers={}))

    for call_id in "abc":
        begin(call_id)
    assert list(tracing.open) == ["b", "c"]  # the oldest was ended, marked unfinished
    (ended,) = exported.get_finished_spans()
    assert ended.attributes["sidecar.call_id"] == "a" and ended.attributes["sidecar.unfinished"] is True
    tracing.finished(CallEvent(call_id="a", requested_group="g", group="g", capability="chat", deployment_id="d"))
    assert len(exported.get_finished_spans()) == 1  # its late event is ignored
    tracing.finished(CallEvent(call_id="b", requested_group="g", group="g", capability="chat", deployment_id="d",
                               start_time=1.0))
    assert [s.attributes["sidecar.call_id"] for s in exported.get_finished_spans() if "sidecar.call_id" in s.attributes
            ] == ["a", "b"] and list(tracing.open) == ["c"]
    tracing.max_age = 0.0
    begin("d")
    assert list(tracing.open) == ["d"]  # "c" was too old


# ---------------------------------------------------------------- off, and without the SDK

SCRIPT = """
import asyncio, json, sys
from aiohttp.test_utils import TestClient, TestServer
if sys.argv[1] == "block":
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "opentelemetry":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
from sidecar import keys
from sidecar.app import create_app
from sidecar.config import parse_config

config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                       "litellm_settings": {"callbacks": json.loads(sys.argv[2])},
                       "general_settings": {"database_url": "sqlite:///" + sys.argv[3]}}, source="t.yaml")

async def main():
    app = create_app(config)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/v1/chat/completions", headers={"traceparent": "00-%s-%s-01"},
                                 json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        print(json.dumps({"status": resp.status, "pre_call": app[keys.HOOKS].pre_call is not None,
                          "loaded": "sidecar_otel" in sys.modules,
                          "tracing": app[keys.PLUGIN_MANAGER].get_plugin("otel.tracing") is not None,
                          "otel": sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")}))

asyncio.run(main())
""" % (TRACE, CLIENT_SPAN)


def run_script(tmp_path, mode: str, callbacks: list[str]) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, json.dumps(callbacks), str(tmp_path / "s.db")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_with_otel_off_nothing_from_opentelemetry_is_imported(tmp_path):
    out, _ = run_script(tmp_path, "installed", [])
    assert out == {"status": 200, "pre_call": False, "loaded": True, "tracing": False, "otel": []}


def test_without_the_sdk_otel_is_one_warning_and_the_sidecar_serves(tmp_path):
    out, stderr = run_script(tmp_path, "block", ["otel"])
    assert out == {"status": 200, "pre_call": False, "loaded": True, "tracing": False, "otel": []}
    assert stderr.count("otel needs the OpenTelemetry SDK") == 1, stderr
    assert "pip install 'sidecar-otel[otlp]'" in stderr and "Traceback" not in stderr


def test_sidecar_plugins_lists_otels_hooks():
    from sidecar.plugins import describe_plugins, get_plugin_manager

    (row,) = [r for r in describe_plugins(get_plugin_manager()) if r["name"] == "otel"]
    assert row["providers"] == [] and row["version"] == "0.1.0"
    assert row["hooks"] == ["sidecar_configure"]  # the rest are an app's, registered only when it has otel on


# ---------------------------------------------------------------- the environment


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ExportPlan("http")),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ExportPlan("grpc")),
    ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ExportPlan("http")),
    # LiteLLM's own variables, where the standard ones are not set
    ({"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": "http://collector:4318", "OTEL_HEADERS": "Authorization=Bearer%20x"},
     ExportPlan("http", "http://collector:4318/v1/traces", {"authorization": "Bearer x"})),
    ({"OTEL_EXPORTER": "otlp_grpc", "OTEL_ENDPOINT": "http://collector:4317"},
     ExportPlan("grpc", "http://collector:4317")),
    ({"OTEL_EXPORTER": "console"}, ExportPlan("console")),
    ({"OTEL_ENDPOINT": "http://old:4318", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://new:4318"}, ExportPlan("http")),
], ids=["default", "grpc", "traces-wins", "litellm-http", "litellm-grpc", "console", "standard-wins"])
def test_the_export_plan_follows_the_environment(env, expected):
    assert plan(env) == expected


def test_an_unsupported_protocol_falls_back_to_http_protobuf_with_a_note():
    found = plan({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert found.kind == "http" and "http/json" in (found.note or "")
