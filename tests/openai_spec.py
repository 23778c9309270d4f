"""Validate JSON payloads against OpenAI's official response schemas.

Uses the committed extract ``tests/openai_schemas.json`` (see
``scripts/extract_openai_schemas.py``). OpenAPI-3.0 ``nullable: true`` is
rewritten into JSON-Schema null unions; ``format`` is not enforced.

    from openai_spec import assert_valid
    assert_valid(body, "CreateChatCompletionResponse")
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012


def _load_extract_script() -> Any:
    """scripts/extract_openai_schemas.py, whose JSON-Schema keyword tables this module shares."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "extract_openai_schemas.py"
    spec = importlib.util.spec_from_file_location("extract_openai_schemas", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_extract_script = _load_extract_script()

SCHEMAS_PATH = Path(__file__).resolve().with_name("openai_schemas.json")
BASE_URI = "urn:openai-openapi"

_SCHEMA_MAP_KEYS, _SCHEMA_KEYS, _SCHEMA_LIST_KEYS = (
    _extract_script.SCHEMA_MAP_KEYS, _extract_script.SCHEMA_KEYS, _extract_script.SCHEMA_LIST_KEYS)
# If any of these is present, "null" must bypass the whole schema via anyOf.
_NEEDS_WRAP = frozenset({"$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "not", "const", "if"})


def convert_nullable(schema: Any) -> Any:
    """Return a copy of ``schema`` with OpenAPI-3.0 ``nullable`` turned into JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: convert_nullable(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [convert_nullable(sub) for sub in value]
        elif key in _SCHEMA_KEYS:
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


@lru_cache(maxsize=1)
def load_document() -> dict[str, Any]:
    """Load the committed extract with all component schemas nullable-converted."""
    doc = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    schemas = doc["components"]["schemas"]
    doc["components"]["schemas"] = {name: convert_nullable(s) for name, s in schemas.items()}
    return doc


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(BASE_URI, DRAFT202012.create_resource(load_document()))


def schema_names() -> list[str]:
    """Names of all schemas available in the extract."""
    return sorted(load_document()["components"]["schemas"])


@lru_cache(maxsize=None)
def validator_for(schema_name: str) -> Draft202012Validator:
    """Build (once) a validator for ``#/components/schemas/<schema_name>``."""
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
    """Return one readable ``path: message`` entry per error (empty if valid)."""
    errors = sorted(
        validator_for(schema_name).iter_errors(instance),
        key=lambda e: ([str(p) for p in e.absolute_path], e.message),
    )
    return [_format(err) for err in errors]


def assert_valid(instance: Any, schema_name: str) -> None:
    """Raise AssertionError listing all errors if ``instance`` violates ``schema_name``."""
    errors = validation_errors(instance, schema_name)
    if errors:
        body = "\n".join(f"  {i}. {text}" for i, text in enumerate(errors, 1))
        raise AssertionError(
            f"payload does not match OpenAI schema {schema_name!r} "
            f"({len(errors)} error(s)):\n{body}"
        )
