"""OpenAI's spec, shipped with the kit: validate answers against its response schemas, and know
the params of its requests.

``openai_schemas.json`` (package data, written by ``scripts/extract_openai_schemas.py`` from
OpenAI's OpenAPI spec) holds the response schemas a gateway answers with and the property names of
the request schemas. OpenAPI-3.0 ``nullable: true`` is rewritten into JSON-Schema null unions;
``format`` is not enforced.

    from sidecar.testing import assert_valid
    assert_valid(body, "CreateChatCompletionResponse")
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["REQUEST_SCHEMAS", "SCHEMAS_FILE", "assert_valid", "convert_nullable", "load_document",
           "request_params", "schema_names", "validation_errors", "validator_for"]

SCHEMAS_FILE = "openai_schemas.json"
"""The extract's name in this package (``importlib.resources``)."""
BASE_URI = "urn:openai-openapi"

REQUEST_SCHEMAS = {
    "chat": "CreateChatCompletionRequest",
    "completion": "CreateCompletionRequest",
    "embedding": "CreateEmbeddingRequest",
    "moderation": "CreateModerationRequest",
    "image_generation": "CreateImageRequest",
    "audio_speech": "CreateSpeechRequest",
    "audio_transcription": "CreateTranscriptionRequest",
}
"""Each capability's request schema in OpenAI's spec (``rerank`` is Cohere's API: none)."""

# JSON-Schema keywords by the shape of their value (the extract script walks schemas with them too).
SCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
"""Keywords whose value is a map of name -> subschema (names are data, not keywords)."""
SCHEMA_KEYS = frozenset({"additionalProperties", "unevaluatedProperties", "propertyNames", "items",
                         "additionalItems", "unevaluatedItems", "contains", "not", "if", "then", "else"})
"""Keywords whose value is a single subschema."""
SCHEMA_LIST_KEYS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
"""Keywords whose value is a list of subschemas."""
# If any of these is present, "null" must bypass the whole schema via anyOf.
_NEEDS_WRAP = frozenset({"$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "not", "const", "if"})


def convert_nullable(schema: Any) -> Any:
    """Return a copy of ``schema`` with OpenAPI-3.0 ``nullable`` turned into JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: convert_nullable(sub) for name, sub in value.items()}
        elif key in SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [convert_nullable(sub) for sub in value]
        elif key in SCHEMA_KEYS:
            if isinstance(value, list):
                out[key] = [convert_nullable(sub) for sub in value]
            else:
                out[key] = convert_nullable(value)
        else:
            out[key] = copy.deepcopy(value)
    if out.pop("nullable", False) is not True:
        return out
    if "type" not in out or _NEEDS_WRAP & out.keys():
        return {"anyOf": [out, {"type": "null"}]}
    types = out["type"] if isinstance(out["type"], list) else [out["type"]]
    out["type"] = types if "null" in types else [*types, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def raw_text() -> str:
    """The extract as shipped."""
    return resources.files(__package__).joinpath(SCHEMAS_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_document() -> dict[str, Any]:
    """The extract with all component schemas nullable-converted."""
    doc = json.loads(raw_text())
    schemas = doc["components"]["schemas"]
    doc["components"]["schemas"] = {name: convert_nullable(s) for name, s in schemas.items()}
    return doc


def request_params(capability: str) -> frozenset[str]:
    """The property names of ``capability``'s request in OpenAI's spec (``model`` included)."""
    schema = REQUEST_SCHEMAS.get(capability)
    if schema is None:
        raise KeyError(f"OpenAI's spec has no request for the {capability!r} capability")
    return frozenset(load_document()["request_params"][schema])


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(BASE_URI, DRAFT202012.create_resource(load_document()))


def schema_names() -> list[str]:
    """Names of all response schemas in the extract."""
    return sorted(load_document()["components"]["schemas"])


@lru_cache(maxsize=None)
def validator_for(schema_name: str) -> Draft202012Validator:
    """A validator (built once) for ``#/components/schemas/<schema_name>``."""
    if schema_name not in load_document()["components"]["schemas"]:
        raise KeyError(f"unknown OpenAI schema {schema_name!r}; known: {schema_names()}")
    root = {"$ref": f"{BASE_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(root, registry=_registry())  # no format_checker: lenient


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _format(error: ValidationError) -> str:
    lines = [f"{_path(error)}: {error.message}"]
    for sub in sorted(error.context or (), key=lambda e: (str(list(e.schema_path)), e.message)):
        lines.append(f"    - [branch {sub.schema_path[0]}] {_path(sub)}: {sub.message}")
    return "\n".join(lines)


def validation_errors(instance: Any, schema_name: str) -> list[str]:
    """One readable ``path: message`` entry per error (empty if valid)."""
    errors = sorted(validator_for(schema_name).iter_errors(instance),
                    key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    return [_format(err) for err in errors]


def assert_valid(instance: Any, schema_name: str) -> None:
    """Raise AssertionError listing all errors if ``instance`` violates ``schema_name``."""
    errors = validation_errors(instance, schema_name)
    if errors:
        body = "\n".join(f"  {i}. {text}" for i, text in enumerate(errors, 1))
        raise AssertionError(f"payload does not match OpenAI schema {schema_name!r} ({len(errors)} error(s)):\n{body}")
