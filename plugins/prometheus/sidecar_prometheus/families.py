"""LiteLLM's Prometheus metric families, with the labels of LiteLLM's that the sidecar can fill.

Names and label names are LiteLLM's (``litellm/types/integrations/prometheus.py``), so its Grafana
dashboards keep working: counters are exposed with ``_total`` appended, histograms as
``_bucket`` / ``_sum`` / ``_count``. A label LiteLLM has and the sidecar never fills (virtual-key
and team labels, ``client_ip``, ``user_agent``...) is left out: in PromQL a missing label and an
empty one are the same, so ``by (team)`` and ``{team=""}`` still work. ``api_base`` is never a
label (it may hold a credential or an internal host).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LATENCY_BUCKETS", "Families"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 420.0,
                   600.0, float("inf"))
"""LiteLLM's latency buckets (seconds)."""

REQUEST = ("requested_model",)
DEPLOYMENT = ("model_group", "requested_model", "litellm_model_name", "model_id", "api_provider")
"""An attempt's group, the group asked for, the upstream model, the deployment, its provider."""
EXCEPTION = ("exception_status", "exception_class")
USAGE = ("model", "requested_model", "model_id", "api_provider")
LATENCY = ("model_group", "requested_model", "model", "model_id", "api_provider")
UPSTREAM = ("model_group", "api_provider", "litellm_model_name", "model_id")
STATE = ("litellm_model_name", "model_id", "api_provider")
END_USER = ("end_user",)
"""The body's ``user``, on the per-request families, only with LiteLLM's
``enable_end_user_cost_tracking_prometheus_only`` (it is the client's to choose: unbounded)."""


class Families:
    """Every metric family, built once per app into ``registry`` (None in multiprocess mode, where
    values live in files and a MultiProcessCollector reads them back)."""

    def __init__(self, registry: CollectorRegistry | None, end_user: bool = False) -> None:
        user = END_USER if end_user else ()

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, labels: tuple[str, ...]) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=LATENCY_BUCKETS)

        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
            # several workers: the value set last by any of them
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode="mostrecent")

        self.proxy_total = counter(
            "litellm_proxy_total_requests_metric",
            "Requests the client got an answer or an error for", (*REQUEST, "status_code", "model_id", "api_provider", *user))
        self.proxy_failed = counter(
            "litellm_proxy_failed_requests_metric",
            "Requests the client got an error for", (*REQUEST, *EXCEPTION, "model_id", "api_provider", *user))
        self.deployment_success = counter(
            "litellm_deployment_success_responses", "Upstream attempts that succeeded", DEPLOYMENT)
        self.deployment_failure = counter(
            "litellm_deployment_failure_responses", "Upstream attempts that failed", (*DEPLOYMENT, *EXCEPTION))
        self.deployment_total = counter(
            "litellm_deployment_total_requests", "Upstream attempts (retries and fallbacks each count)", DEPLOYMENT)
        self.cooled_down = counter(
            "litellm_deployment_cooled_down", "Times a failure put a deployment into a cooldown",
            (*STATE, "exception_status"))
        self.fallback_ok = counter(
            "litellm_deployment_successful_fallbacks", "Fallback groups that served a request after its group failed",
            (*REQUEST, "fallback_model", *EXCEPTION))
        self.fallback_failed = counter(
            "litellm_deployment_failed_fallbacks", "Fallback groups tried that failed too",
            (*REQUEST, "fallback_model", *EXCEPTION))
        self.input_tokens = counter("litellm_input_tokens_metric", "Prompt tokens", (*USAGE, *user))
        self.output_tokens = counter("litellm_output_tokens_metric", "Completion tokens", (*USAGE, *user))
        self.total_tokens = counter("litellm_total_tokens_metric", "Prompt + completion tokens", (*USAGE, *user))
        self.spend = counter("litellm_spend_metric", "Spend (USD) at the catalog's or the deployment's prices",
                             (*USAGE, *user))
        self.request_latency = histogram(
            "litellm_request_total_latency_metric",
            "Seconds from the request's arrival to the end of its answer (a stream: its end)", (*LATENCY, *user))
        self.api_latency = histogram(
            "litellm_llm_api_latency_metric", "Seconds of the upstream call that served the request", (*LATENCY, *user))
        self.time_to_first_token = histogram(
            "litellm_llm_api_time_to_first_token_metric",
            "Seconds from a stream's upstream call to its first chunk", (*LATENCY, *user))
        self.overhead = histogram(
            "litellm_overhead_latency_metric",
            "Seconds the sidecar added to a served request (earlier failed attempts included)", UPSTREAM)
        self.state = gauge(
            "litellm_deployment_state", "0 healthy (last attempt served), 1 partial outage (last attempt failed), "
            "2 outage (cooling down)", STATE)
        self.remaining_requests = gauge(
            "litellm_remaining_requests_metric", "What is left of the deployment's rpm this minute", UPSTREAM)
        self.remaining_tokens = gauge(
            "litellm_remaining_tokens_metric", "What is left of the deployment's tpm this minute", UPSTREAM)
