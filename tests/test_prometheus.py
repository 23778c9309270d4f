"""The built-in ``prometheus`` plugin, over HTTP: ``/metrics`` in Prometheus' text format (parsed
with prometheus_client's parser) with LiteLLM's names and labels, moving as requests, failures,
cooldowns and fallbacks happen; on only when the config names it; its key option; one registry per
app; and with ``sidecar serve --workers 2``, the whole sidecar's counts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import MOCK_MODELS
from gateway_helpers import Server, assert_error, write_config
from openai_helpers import KEY, post, stream, user
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from test_router_failures import group
from test_workers import both_workers

from sidecar import keys
from sidecar_prometheus.recorder import Recorder

CHAT = "/v1/chat/completions"
MASTER = "sk-metrics-master"


def config(model_list: list[dict[str, Any]], router: dict[str, Any] | None = None, **litellm: Any) -> dict[str, Any]:
    """A config with ``prometheus`` in LiteLLM's callbacks."""
    return {"model_list": model_list, "router_settings": router or {},
            "litellm_settings": {"callbacks": ["prometheus"], **litellm}}


class Scrape:
    """One ``/metrics`` answer, parsed: ``value(sample, **labels)`` sums the samples whose labels
    include ``labels`` (0 when none matches)."""

    def __init__(self, text: str, content_type: str) -> None:
        self.text = text
        self.content_type = content_type
        openmetrics = content_type.startswith("application/openmetrics-text")
        parse = parse_openmetrics if openmetrics else text_string_to_metric_families
        self.families = {family.name: family for family in parse(text)}

    def samples(self, name: str) -> list[Any]:
        return [s for family in self.families.values() for s in family.samples if s.name == name]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples(name) if labels.items() <= s.labels.items())

    def labels(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples(name)]


async def scrape(client: Any, path: str = "/metrics", **headers: str) -> Scrape:
    resp = await client.get(path, headers=headers)
    text = await resp.text()
    assert resp.status == 200, text
    return Scrape(text, resp.headers["Content-Type"])


async def scrape_when(client: Any, name: str, expected: float, **labels: str) -> Scrape:
    """Scrape until ``name{labels}`` is ``expected``: events reach the plugin after the answer."""
    deadline = time.monotonic() + 10
    while True:
        got = await scrape(client)
        if got.value(name, **labels) == expected:
            return got
        assert time.monotonic() < deadline, f"{name}{labels} is {got.value(name, **labels)}, not {expected}"
        await asyncio.sleep(0.02)


def assert_no_secret(text: str) -> None:
    for secret in (KEY, MASTER, "api_key", "api_base", "127.0.0.1"):
        assert secret not in text, secret


async def chat(client: Any, model: str, **extra: Any) -> tuple[int, Any, Any]:
    return await post(client, CHAT, {"model": model, "messages": user("hi"), **extra})


# ---------------------------------------------------------------- served requests


async def test_served_requests_move_the_request_token_spend_and_latency_metrics(make_client, openai_fake):
    client = await make_client(config(group("g", "gpt-4o-mini", base=openai_fake.base_url)))
    answers = [await chat(client, "g") for _ in range(2)]
    assert [status for status, _, _ in answers] == [200, 200]
    _, chunks = await stream(client, {"model": "g", "messages": user("hi"), "stream_options": {"include_usage": True}})
    usages = [body["usage"] for _, body, _ in answers] + [chunks[-1]["usage"]]
    got = await scrape_when(client, "litellm_proxy_total_requests_metric_total", 3)

    assert got.content_type.startswith("text/plain; version=")
    assert got.labels("litellm_proxy_total_requests_metric_total") == [
        {"requested_model": "g", "status_code": "200", "model_id": "dep-gpt-4o-mini", "api_provider": "openai"}]
    deployment = {"model_group": "g", "requested_model": "g", "litellm_model_name": "gpt-4o-mini",
                  "model_id": "dep-gpt-4o-mini", "api_provider": "openai"}
    assert got.labels("litellm_deployment_success_responses_total") == [deployment]
    assert got.value("litellm_deployment_success_responses_total") == 3
    assert got.value("litellm_deployment_total_requests_total", **deployment) == 3
    assert got.value("litellm_deployment_failure_responses_total") == 0
    assert got.value("litellm_proxy_failed_requests_metric_total") == 0
    usage = {"model": "gpt-4o-mini", "requested_model": "g", "model_id": "dep-gpt-4o-mini", "api_provider": "openai"}
    assert got.value("litellm_input_tokens_metric_total", **usage) == sum(u["prompt_tokens"] for u in usages)
    assert got.value("litellm_output_tokens_metric_total", **usage) == sum(u["completion_tokens"] for u in usages)
    assert got.value("litellm_total_tokens_metric_total", **usage) == sum(u["total_tokens"] for u in usages)
    cost = sum(float(headers["x-litellm-response-cost"]) for _, _, headers in answers)
    assert got.value("litellm_spend_metric_total", **usage) == pytest.approx(cost * 3 / 2)  # (the stream's too)
    assert cost > 0
    latency = {"model_group": "g", "requested_model": "g", "model": "gpt-4o-mini", "model_id": "dep-gpt-4o-mini"}
    for name in ("litellm_request_total_latency_metric", "litellm_llm_api_latency_metric"):
        assert got.value(f"{name}_count", **latency) == 3
        assert 0 < got.value(f"{name}_sum", **latency) < 10
        assert got.value(f"{name}_bucket", le="+Inf", **latency) == 3
    assert got.value("litellm_llm_api_time_to_first_token_metric_count", **latency) == 1  # streams only
    assert got.value("litellm_overhead_latency_metric_count", model_id="dep-gpt-4o-mini") == 3
    total = got.value("litellm_request_total_latency_metric_sum")
    assert total >= got.value("litellm_llm_api_latency_metric_sum")
    assert got.labels("litellm_deployment_state") == [
        {"litellm_model_name": "gpt-4o-mini", "model_id": "dep-gpt-4o-mini", "api_provider": "openai"}]
    assert got.value("litellm_deployment_state") == 0
    assert got.samples("litellm_remaining_requests_metric") == []  # (no rpm: no series)
    assert "process_resident_memory_bytes" in got.families  # (as on LiteLLM's /metrics)
    assert_no_secret(got.text)


async def test_remaining_requests_and_tokens_of_a_deployment_with_limits(make_client, openai_fake):
    client = await make_client(config(group("g", "gpt-4o-mini", base=openai_fake.base_url, rpm=100, tpm=100_000)))
    for _ in range(3):
        assert (await chat(client, "g"))[0] == 200
    got = await scrape_when(client, "litellm_proxy_total_requests_metric_total", 3)
    labels = {"model_group": "g", "api_provider": "openai", "litellm_model_name": "gpt-4o-mini",
              "model_id": "dep-gpt-4o-mini"}
    assert got.labels("litellm_remaining_requests_metric") == [labels]
    assert got.value("litellm_remaining_requests_metric") == 97
    assert 100_000 - 3 * 30 < got.value("litellm_remaining_tokens_metric", **labels) < 100_000


async def test_the_body_user_is_an_end_user_label_only_when_litellm_is_told_to(make_client, openai_fake):
    models = group("g", "gpt-4o-mini", base=openai_fake.base_url)
    plain = await make_client(config(models))
    tracked = await make_client(config(models, enable_end_user_cost_tracking_prometheus_only=True))
    for client in (plain, tracked):
        assert (await chat(client, "g", user="alice"))[0] == 200
    got = await scrape_when(plain, "litellm_proxy_total_requests_metric_total", 1)
    assert "end_user" not in got.labels("litellm_proxy_total_requests_metric_total")[0]
    assert "alice" not in got.text
    got = await scrape_when(tracked, "litellm_proxy_total_requests_metric_total", 1, end_user="alice")
    for name in ("litellm_spend_metric_total", "litellm_total_tokens_metric_total",
                 "litellm_request_total_latency_metric_count"):
        assert got.value(name, end_user="alice") > 0, name


# ---------------------------------------------------------------- failures, cooldowns, fallbacks


async def test_a_failed_attempt_cools_its_deployment_down_and_the_retry_serves(make_client, openai_fake):
    entries = group("g", "error-500", "gpt-4o-mini", base=openai_fake.base_url, num_retries=1)
    entries[0]["litellm_params"]["order"] = 1  # tried first
    entries[1]["litellm_params"]["order"] = 2
    client = await make_client(config(entries, {"allowed_fails": 0, "cooldown_time": 60}))
    assert (await chat(client, "g"))[0] == 200
    got = await scrape_when(client, "litellm_proxy_total_requests_metric_total", 1)
    bad = {"model_group": "g", "requested_model": "g", "litellm_model_name": "error-500", "model_id": "dep-error-500",
           "api_provider": "openai"}
    assert got.labels("litellm_deployment_failure_responses_total") == [
        {**bad, "exception_status": "500", "exception_class": "Openai.InternalServerError"}]
    assert got.value("litellm_deployment_failure_responses_total") == 1
    assert got.value("litellm_deployment_total_requests_total", **bad) == 1
    assert got.value("litellm_deployment_success_responses_total", model_id="dep-gpt-4o-mini") == 1
    assert got.labels("litellm_deployment_cooled_down_total") == [
        {"litellm_model_name": "error-500", "model_id": "dep-error-500", "api_provider": "openai",
         "exception_status": "500"}]
    assert got.value("litellm_deployment_cooled_down_total") == 1
    assert got.value("litellm_deployment_state", model_id="dep-error-500") == 2  # cooling down: an outage
    assert got.value("litellm_deployment_state", model_id="dep-gpt-4o-mini") == 0
    assert got.value("litellm_proxy_failed_requests_metric_total") == 0  # the client was served
    assert got.value("litellm_proxy_total_requests_metric_total", status_code="200", model_id="dep-gpt-4o-mini") == 1


async def test_requests_the_client_gets_an_error_for(make_client, openai_fake):
    client = await make_client(config(group("limited", "error-429", base=openai_fake.base_url, num_retries=0)
                                      + group("broken", "error-500", base=openai_fake.base_url, num_retries=0)))
    assert (await chat(client, "limited"))[0] == 429
    assert (await chat(client, "broken"))[0] == 502
    assert (await chat(client, "no-such-model"))[0] == 404
    got = await scrape_when(client, "litellm_proxy_failed_requests_metric_total", 3)
    assert sorted(got.labels("litellm_proxy_failed_requests_metric_total"), key=lambda x: x["exception_status"]) == [
        {"requested_model": "other", "exception_status": "404", "exception_class": "NotFoundError", "model_id": "",
         "api_provider": ""},  # (a name nothing serves is not a series of its own)
        {"requested_model": "limited", "exception_status": "429", "exception_class": "Openai.RateLimitError",
         "model_id": "dep-error-429", "api_provider": "openai"},
        {"requested_model": "broken", "exception_status": "502", "exception_class": "Openai.InternalServerError",
         "model_id": "dep-error-500", "api_provider": "openai"},  # (the client's status; the upstream's below)
    ]
    assert got.value("litellm_proxy_total_requests_metric_total") == 3
    assert got.value("litellm_proxy_total_requests_metric_total", requested_model="limited", status_code="429") == 1
    assert got.value("litellm_deployment_failure_responses_total", model_id="dep-error-500",
                     exception_status="500") == 1
    assert got.value("litellm_deployment_state", model_id="dep-error-429") == 1  # the only one: never cooled
    assert got.value("litellm_deployment_cooled_down_total") == 0
    assert "no-such-model" not in got.text
    assert_no_secret(got.text)


async def test_fallbacks_count_once_per_fallback_group_with_the_failure_that_caused_them(make_client, openai_fake):
    models = (group("main", "error-503", base=openai_fake.base_url, num_retries=0)
              + group("lone", "error-429", base=openai_fake.base_url, num_retries=0)
              + group("broken", "error-500", base=openai_fake.base_url, num_retries=1)
              + group("backup", "gpt-4o-mini", base=openai_fake.base_url))
    client = await make_client(config(models, {"fallbacks": [{"main": ["broken", "backup"]}, {"lone": ["broken"]}]}))
    status, _, headers = await chat(client, "main")
    assert status == 200 and headers["x-litellm-attempted-fallbacks"] == "2"
    assert (await chat(client, "lone"))[0] == 502
    got = await scrape_when(client, "litellm_proxy_total_requests_metric_total", 2)
    assert got.labels("litellm_deployment_successful_fallbacks_total") == [
        {"requested_model": "main", "fallback_model": "backup", "exception_status": "503",
         "exception_class": "Openai.ServiceUnavailableError"}]
    assert got.value("litellm_deployment_successful_fallbacks_total") == 1
    failed = sorted(got.labels("litellm_deployment_failed_fallbacks_total"), key=lambda x: x["requested_model"])
    assert failed == [
        {"requested_model": "lone", "fallback_model": "broken", "exception_status": "429",
         "exception_class": "Openai.RateLimitError"},
        {"requested_model": "main", "fallback_model": "broken", "exception_status": "503",
         "exception_class": "Openai.ServiceUnavailableError"},
    ]
    assert got.value("litellm_deployment_failed_fallbacks_total") == 2  # once per group, not per attempt
    assert got.value("litellm_deployment_total_requests_total", model_id="dep-error-500") == 4  # (it retried)
    assert got.value("litellm_proxy_total_requests_metric_total", requested_model="main", status_code="200",
                     model_id="dep-gpt-4o-mini") == 1
    assert got.value("litellm_proxy_failed_requests_metric_total", requested_model="lone",
                     exception_class="Openai.InternalServerError") == 1  # (the last attempt's error)
    assert got.value("litellm_deployment_success_responses_total", model_group="backup", requested_model="main") == 1


# ---------------------------------------------------------------- on, off, keys, apps


def recorders(app: Any) -> list[Recorder]:
    """The prometheus recorders that get this app's call events."""
    events = app[keys.HOOKS].events
    impls = [*events.sync_impls, *events.async_impls] if events is not None else []
    return [impl.function.__self__ for impl in impls if isinstance(getattr(impl.function, "__self__", None), Recorder)]


async def test_off_unless_the_config_names_it(make_client, openai_fake):
    client = await make_client({"model_list": group("g", "gpt-4o-mini", base=openai_fake.base_url)})
    assert recorders(client.app) == []  # requests pay nothing for the plugin
    assert (await chat(client, "g"))[0] == 200
    await assert_error(await client.get("/metrics"), 404)
    client = await make_client({"model_list": MOCK_MODELS, "litellm_settings": {"success_callback": ["prometheus"]}})
    assert [recorder.app for recorder in recorders(client.app)] == [client.app]
    assert (await scrape(client)).families
    ready = await (await client.get("/health/readiness")).json()
    assert "prometheus" in ready["success_callbacks"]


@pytest.mark.parametrize("required", [False, True])
async def test_metrics_are_open_unless_litellm_requires_the_key(make_client, required):
    data = config(MOCK_MODELS, require_auth_for_metrics_endpoint=required)
    client = await make_client({**data, "general_settings": {"master_key": MASTER}})
    assert (await chat(client, "mock-gpt"))[0] == 401  # (the API itself needs the key)
    for path in ("/metrics", "/metrics/"):
        resp = await client.get(path)
        if required:
            await assert_error(resp, 401)
            resp = await client.get(path, headers={"Authorization": f"Bearer {MASTER}"})
        assert resp.status == 200, await resp.text()
        assert_no_secret(await resp.text())


async def test_each_app_has_its_own_metrics(make_client):
    a = await make_client(config(MOCK_MODELS))
    b = await make_client(config(MOCK_MODELS))
    for _ in range(2):
        assert (await post(a, CHAT, {"model": "mock-gpt", "messages": user("hi")}))[0] == 200
    await scrape_when(a, "litellm_proxy_total_requests_metric_total", 2)
    assert (await scrape(b)).value("litellm_proxy_total_requests_metric_total") == 0


async def test_openmetrics_when_the_scraper_asks_for_it(make_client):
    client = await make_client(config(MOCK_MODELS))
    assert (await post(client, CHAT, {"model": "mock-gpt", "messages": user("hi")}))[0] == 200
    await scrape_when(client, "litellm_proxy_total_requests_metric_total", 1)
    got = await scrape(client, Accept="application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert got.content_type.startswith("application/openmetrics-text")
    assert got.families["litellm_proxy_total_requests_metric"].type == "counter"
    assert got.value("litellm_proxy_total_requests_metric_total", requested_model="mock-gpt") == 1


# ---------------------------------------------------------------- `sidecar serve --workers 2`


def test_with_two_workers_metrics_count_the_whole_sidecar(tmp_path):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"a previous run's file")  # removed at start
    cfg = write_config(tmp_path / "workers.yaml", {
        **config(MOCK_MODELS), "general_settings": {"database_url": f"sqlite:///{tmp_path / 'shared.db'}"}})
    with Server(cfg, tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}, extra_args=("--workers", "2")) as server:
        server.wait_ready()
        pids = both_workers(server)
        body = b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}'
        for _ in range(24):  # each on a fresh connection: the kernel spreads them over the workers
            req = urllib.request.Request(server.url + CHAT, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
                got = Scrape(resp.read().decode(), resp.headers["Content-Type"])
            if got.value("litellm_proxy_total_requests_metric_total") == 24 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got.value("litellm_proxy_total_requests_metric_total", requested_model="mock-gpt") == 24
        assert got.value("litellm_deployment_success_responses_total") == 24
        assert got.value("litellm_request_total_latency_metric_count") == 24
        assert got.value("litellm_deployment_state") == 0
        written = {path.name for path in shared.iterdir()}
        assert "counter_999999.db" not in written
        assert {f"counter_{pid}.db" for pid in pids} <= written, written  # both workers served and counted



MULTIPROC_DIR = """
import os
from sidecar_prometheus.multiproc import directory
assert directory(1) is None  # one process: no files
path = directory(2)
print(path, os.environ["PROMETHEUS_MULTIPROC_DIR"] == path, oct(os.stat(path).st_mode & 0o777))
"""


def test_without_the_variable_workers_share_a_private_directory_removed_at_exit():
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run([sys.executable, "-c", MULTIPROC_DIR], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    path, inherited, mode = out.stdout.split()
    assert inherited == "True" and mode == "0o700"  # (the workers inherit the variable)
    assert not Path(path).exists()
