"""Where the spans go, from the environment: OpenTelemetry's standard ``OTEL_EXPORTER_OTLP_*``
variables, and LiteLLM's own ``OTEL_EXPORTER`` / ``OTEL_ENDPOINT`` / ``OTEL_HEADERS`` where the
standard ones are not set. Nothing from OpenTelemetry is imported until :func:`build_exporter`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = ["ExportPlan", "build_exporter", "missing", "plan"]

_MODULES = {
    "http": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "console": "opentelemetry.sdk.trace.export",
}
_EXTRAS = {"http": "otlp", "grpc": "grpc", "console": "otlp"}
_LITELLM_EXPORTERS = {"otlp_http": "http", "otlp_grpc": "grpc", "grpc": "grpc", "console": "console"}


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """How spans are exported: ``kind`` is ``http`` (OTLP over HTTP/protobuf), ``grpc`` or
    ``console``. ``endpoint`` and ``headers`` are None when the exporter reads the standard
    variables itself; ``note`` is a warning to log (an unsupported setting was replaced)."""

    kind: str = "http"
    endpoint: str | None = None
    headers: dict[str, str] | None = None
    note: str | None = None

    @property
    def module(self) -> str:
        return _MODULES[self.kind]


def plan(env: Mapping[str, str]) -> ExportPlan:
    """The export plan the environment describes."""
    note = None
    litellm = env.get("OTEL_EXPORTER", "").strip().lower()
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
    if litellm and not protocol:
        kind = _LITELLM_EXPORTERS.get(litellm)
        if kind is None:
            kind, note = "http", (f"OTEL_EXPORTER={litellm!r} is not one the sidecar knows (otlp_http, otlp_grpc, "
                                  "console): exporting OTLP over HTTP/protobuf")
    elif protocol in ("", "http/protobuf"):
        kind = "http"
    elif protocol == "grpc":
        kind = "grpc"
    else:
        kind, note = "http", (f"OTLP protocol {protocol!r} is not supported here: exporting http/protobuf, which "
                              "every OTLP/HTTP receiver accepts too")
    endpoint = headers = None
    standard_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not standard_endpoint and env.get("OTEL_ENDPOINT") and kind != "console":
        endpoint = env["OTEL_ENDPOINT"].strip()
        if kind == "http" and not endpoint.rstrip("/").endswith("/v1/traces"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
    standard_headers = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS")
    if not standard_headers and env.get("OTEL_HEADERS") and kind != "console":
        headers = parse_headers(env["OTEL_HEADERS"])
    return ExportPlan(kind, endpoint, headers, note)


def parse_headers(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` with URL-encoded values (the OTLP variables' format)."""
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[unquote(key.strip()).lower()] = unquote(value.strip())
    return out


def missing(export: ExportPlan) -> str | None:
    """What to install when the SDK or the plan's exporter cannot be imported, else None (the
    modules are looked for, not imported)."""
    for module in ("opentelemetry.sdk.trace", export.module):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"pip install 'sidecar-otel[{_EXTRAS[export.kind]}]'"
    return None


def build_exporter(export: ExportPlan) -> Any:
    """The SpanExporter of the plan (imports the OpenTelemetry exporter it needs)."""
    if export.kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if export.kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=export.endpoint, headers=export.headers)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=export.endpoint, headers=export.headers)
