"""Tests for the OpenAI schema extract and the ``openai_spec.assert_valid`` helper."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from openai_spec import SCHEMAS_PATH, assert_valid, convert_nullable, load_document

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO_ROOT.parent / "shared" / "openai-openapi.yaml"
SCRIPT_PATH = REPO_ROOT / "scripts" / "extract_openai_schemas.py"

CATEGORIES = (
    "hate", "hate/threatening", "harassment", "harassment/threatening",
    "illicit", "illicit/violent", "self-harm", "self-harm/intent",
    "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
)
IMAGE_CAPABLE = {"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence"}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_openai_schemas", SCRIPT_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- realistic payloads -----------------------------------------------------------

def chat_completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-9x8Yz",
        "object": "chat.completion",
        "created": 1717000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today?",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 9,
            "total_tokens": 21,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
    }


def tool_call_completion() -> dict[str, Any]:
    body = chat_completion()
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def stream_chunk() -> dict[str, Any]:
    return {
        "id": "chatcmpl-9x8Yz",
        "object": "chat.completion.chunk",
        "created": 1717000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "Hel"},
             "logprobs": None, "finish_reason": None}
        ],
        "usage": None,
    }


def final_usage_chunk() -> dict[str, Any]:
    return {
        "id": "chatcmpl-9x8Yz",
        "object": "chat.completion.chunk",
        "created": 1717000000,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }


def embedding_response() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093, 0.0151]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }


def moderation_response() -> dict[str, Any]:
    categories: dict[str, Any] = {name: False for name in CATEGORIES}
    categories["illicit/violent"] = None  # nullable in the spec
    return {
        "id": "modr-0d9740456c391e43",
        "model": "omni-moderation-latest",
        "results": [
            {
                "flagged": False,
                "categories": categories,
                "category_scores": {name: 1.2e-05 for name in CATEGORIES},
                "category_applied_input_types": {
                    name: (["text", "image"] if name in IMAGE_CAPABLE else ["text"])
                    for name in CATEGORIES
                },
            }
        ],
    }


def models_list() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
            {"id": "text-embedding-3-small", "object": "model", "created": 1705948997,
             "owned_by": "system"},
        ],
    }


def error_response() -> dict[str, Any]:
    return {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


VALID_CASES = [
    pytest.param(chat_completion, "CreateChatCompletionResponse", id="chat"),
    pytest.param(tool_call_completion, "CreateChatCompletionResponse", id="chat-tool-calls"),
    pytest.param(stream_chunk, "CreateChatCompletionStreamResponse", id="chunk"),
    pytest.param(final_usage_chunk, "CreateChatCompletionStreamResponse", id="usage-chunk"),
    pytest.param(embedding_response, "CreateEmbeddingResponse", id="embedding"),
    pytest.param(moderation_response, "CreateModerationResponse", id="moderation"),
    pytest.param(models_list, "ListModelsResponse", id="models"),
    pytest.param(lambda: models_list()["data"][0], "Model", id="model"),
    pytest.param(error_response, "ErrorResponse", id="error"),
]


@pytest.mark.parametrize(("factory", "schema_name"), VALID_CASES)
def test_valid_payloads_pass(factory: Any, schema_name: str) -> None:
    assert_valid(factory(), schema_name)


# --- violations -------------------------------------------------------------------

def _mutated(factory: Any, mutate: Any) -> dict[str, Any]:
    body = copy.deepcopy(factory())
    mutate(body)
    return body


INVALID_CASES = [
    pytest.param(chat_completion, lambda b: b.update(system_fingerprint=None),
                 "CreateChatCompletionResponse", "system_fingerprint", id="chat-null-fingerprint"),
    pytest.param(stream_chunk, lambda b: b.update(system_fingerprint=None),
                 "CreateChatCompletionStreamResponse", "system_fingerprint",
                 id="chunk-null-fingerprint"),
    pytest.param(chat_completion, lambda b: b.pop("choices"),
                 "CreateChatCompletionResponse", "'choices' is a required property",
                 id="chat-missing-choices"),
    pytest.param(chat_completion, lambda b: b.update(object="foo"),
                 "CreateChatCompletionResponse", "$.object", id="chat-bad-object"),
    pytest.param(stream_chunk, lambda b: b.update(object="chat.completion"),
                 "CreateChatCompletionStreamResponse", "$.object", id="chunk-bad-object"),
    pytest.param(chat_completion, lambda b: b["choices"][0].update(finish_reason=None),
                 "CreateChatCompletionResponse", "finish_reason", id="chat-null-finish"),
    pytest.param(chat_completion, lambda b: b["choices"][0].pop("logprobs"),
                 "CreateChatCompletionResponse", "'logprobs' is a required property",
                 id="chat-missing-logprobs"),
    pytest.param(stream_chunk, lambda b: b["choices"][0].update(finish_reason="done"),
                 "CreateChatCompletionStreamResponse", "finish_reason", id="chunk-bad-finish"),
    pytest.param(final_usage_chunk, lambda b: b["usage"].pop("total_tokens"),
                 "CreateChatCompletionStreamResponse", "total_tokens", id="chunk-usage-missing"),
    pytest.param(embedding_response, lambda b: b.update(object="foo"),
                 "CreateEmbeddingResponse", "$.object", id="embedding-bad-object"),
    pytest.param(embedding_response, lambda b: b.pop("usage"),
                 "CreateEmbeddingResponse", "'usage' is a required property",
                 id="embedding-missing-usage"),
    pytest.param(moderation_response, lambda b: b["results"][0].pop("category_scores"),
                 "CreateModerationResponse", "'category_scores' is a required property",
                 id="moderation-missing-scores"),
    pytest.param(moderation_response, lambda b: b["results"][0]["categories"].pop("illicit"),
                 "CreateModerationResponse", "'illicit' is a required property",
                 id="moderation-missing-illicit"),
    pytest.param(moderation_response,
                 lambda b: b["results"][0].pop("category_applied_input_types"),
                 "CreateModerationResponse", "category_applied_input_types",
                 id="moderation-missing-applied-types"),
    pytest.param(models_list, lambda b: b["data"][0].pop("owned_by"),
                 "ListModelsResponse", "$.data[0]", id="models-missing-owned-by"),
    pytest.param(error_response, lambda b: b["error"].pop("param"),
                 "ErrorResponse", "'param' is a required property", id="error-missing-param"),
]


@pytest.mark.parametrize(("factory", "mutate", "schema_name", "needle"), INVALID_CASES)
def test_violations_fail(factory: Any, mutate: Any, schema_name: str, needle: str) -> None:
    with pytest.raises(AssertionError) as excinfo:
        assert_valid(_mutated(factory, mutate), schema_name)
    assert needle in str(excinfo.value)


def test_reports_all_errors_with_paths() -> None:
    body = chat_completion()
    body.update(system_fingerprint=None, object="foo")
    del body["id"]
    with pytest.raises(AssertionError) as excinfo:
        assert_valid(body, "CreateChatCompletionResponse")
    message = str(excinfo.value)
    assert "(3 error(s))" in message
    assert "$.system_fingerprint: None is not of type 'string'" in message
    assert "$.object:" in message and "'id' is a required property" in message


def test_unknown_schema_name() -> None:
    with pytest.raises(KeyError, match="NoSuchSchema"):
        assert_valid({}, "NoSuchSchema")


def test_format_is_not_enforced() -> None:
    model = dict(models_list()["data"][0], shutdown_date="not-a-date")
    assert_valid(model, "Model")


# --- nullable conversion ----------------------------------------------------------

@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object", "nullable": True}, {"type": ["object", "null"]}),
        ({"type": "string", "enum": ["a"], "nullable": True},
         {"type": ["string", "null"], "enum": ["a", None]}),
        ({"$ref": "#/x", "nullable": True}, {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}),
        ({"type": "string", "nullable": False}, {"type": "string"}),
        ({"type": "object", "properties": {"nullable": {"type": "array", "nullable": True}}},
         {"type": "object", "properties": {"nullable": {"type": ["array", "null"]}}}),
    ],
)
def test_convert_nullable(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert convert_nullable(schema) == expected


def test_converted_schemas_are_valid_2020_12() -> None:
    assert '"nullable": true' in SCHEMAS_PATH.read_text(encoding="utf-8")  # raw extract has some
    for name, schema in load_document()["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert "'nullable'" not in repr(schema), name


# --- extract ----------------------------------------------------------------------

def test_extract_contains_roots_and_source() -> None:
    script = _load_script()
    raw = load_document()
    assert set(script.ROOT_SCHEMAS) <= set(raw["components"]["schemas"])
    assert raw["source"]["file"] == "openai-openapi.yaml"
    assert len(raw["source"]["sha256"]) == 64


def test_clean_schema_keeps_properties_named_like_annotations() -> None:
    script = _load_script()
    refs: set[str] = set()
    cleaned = script.clean_schema(
        {
            "description": "drop me",
            "x-oaiMeta": {"name": "drop"},
            "properties": {
                "description": {"type": "string", "description": "drop", "example": "x"},
                "example": {"$ref": "#/components/schemas/Thing", "description": "drop"},
            },
            "default": {"description": "data, keep"},
        },
        refs,
    )
    assert cleaned == {
        "properties": {"description": {"type": "string"},
                       "example": {"$ref": "#/components/schemas/Thing"}},
        "default": {"description": "data, keep"},
    }
    assert refs == {"Thing"}


@pytest.mark.skipif(not SPEC_PATH.is_file(), reason=f"spec not available at {SPEC_PATH}")
def test_committed_extract_is_up_to_date() -> None:
    script = _load_script()
    expected = script.render(SPEC_PATH)
    assert SCHEMAS_PATH.read_text(encoding="utf-8") == expected, (
        "sidecar/testing/openai_schemas.json is stale; run scripts/extract_openai_schemas.py"
    )
