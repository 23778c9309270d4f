"""The conformance kit: test a provider plugin through the gateway, as ours are tested.

Install it with ``pip install 'llm-sidecar[testing]'`` and load it as a pytest plugin in your
``conftest.py`` (it is not loaded on its own, so installing llm-sidecar never changes another
project's test run)::

    pytest_plugins = ["sidecar.testing"]

with ``asyncio_mode = auto`` in your pytest settings (pytest-aiohttp serves the gateway and your
fakes). It gives:

- fixtures: ``make_gateway`` (``await make_gateway(config_dict, plugins=[my_plugin])``: a test
  client of the gateway, on a temporary SQLite file), ``gateway_config`` (the Config alone) and
  ``openai_sdk`` (``openai_sdk(client)``: an ``openai.AsyncOpenAI`` of that gateway);
- fake upstreams (:mod:`sidecar.testing.fakes`): ``FakeUpstream`` (records what it got), ``start``,
  and the wire writers ``sse``, ``ndjson``, ``cut``, ``cut_json``;
- OpenAI's spec (:mod:`sidecar.testing.spec`, shipped as package data): ``assert_valid(instance,
  schema_name)``, ``request_params(capability)``; answer checks (:mod:`sidecar.testing.answers`):
  ``assert_valid_stream``, ``parse_sse``, ``assert_envelope``, ``assert_error``...;
- the suite (:mod:`sidecar.testing.conformance`): subclass ``ProviderConformance``.

``import sidecar`` never imports this package (nor pytest or jsonschema).
"""

from __future__ import annotations

from sidecar.testing.answers import (
    assert_envelope,
    assert_error,
    assert_valid_stream,
    parse_sse,
    stream_ending_in_error,
    stream_text,
    tool_calls_of,
)
from sidecar.testing.conformance import (
    LITELLM_CLIENT_PARAMS,
    STATUS_FOR_KIND,
    WEATHER_TOOL,
    ErrorCase,
    ProviderConformance,
)
from sidecar.testing.fakes import FakeUpstream, Received, cut, cut_json, ndjson, sse, start
from sidecar.testing.gateway import (
    MOCK_MODELS,
    MakeGateway,
    build_config,
    deployment,
    gateway_config,
    make_gateway,
    openai_sdk,
)
from sidecar.testing.spec import assert_valid, request_params, validation_errors

__all__ = [
    "LITELLM_CLIENT_PARAMS", "MOCK_MODELS", "MakeGateway", "STATUS_FOR_KIND", "WEATHER_TOOL", "ErrorCase",
    "FakeUpstream", "ProviderConformance", "Received", "assert_envelope", "assert_error", "assert_valid",
    "assert_valid_stream", "build_config", "cut", "cut_json", "deployment", "gateway_config", "make_gateway",
    "ndjson", "openai_sdk", "parse_sse", "request_params", "sse", "start", "stream_ending_in_error", "stream_text", "tool_calls_of",
    "validation_errors",
]
