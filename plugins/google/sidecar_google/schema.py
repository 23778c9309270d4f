"""JSON Schema (as OpenAI clients write tool parameters and response schemas) to Gemini's
``Schema``, the OpenAPI 3.0 subset ``parameters`` and ``responseSchema`` take.

As LiteLLM does: ``$ref`` to ``$defs``/``definitions`` are inlined, ``"type": ["x", "null"]``
and ``anyOf`` with a ``null`` branch become ``nullable``, ``const`` becomes a one-value ``enum``,
and keys Gemini's Schema does not have (``additionalProperties``, ``$schema``, ``strict``...) are
left out. Type names are sent in Gemini's enum spelling (``OBJECT``, ``STRING``...).
"""

from __future__ import annotations

from typing import Any

from sidecar import ProviderError

_KEPT = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum",
})
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}
_MAX_DEPTH = 32


def gemini_schema(schema: Any, param: str) -> dict[str, Any]:
    """``schema`` as Gemini's Schema; a 400 naming ``param`` when it is not an object or its
    references loop."""
    if not isinstance(schema, dict):
        raise ProviderError(400, f"`{param}` must be a JSON Schema object", param=param, code="invalid_schema")
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, param, 0)


def _convert(node: Any, defs: dict[str, Any], param: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ProviderError(400, f"`{param}` nests or refers to itself too deeply for Gemini's schema",
                            param=param, code="invalid_schema")
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if target is None:
            raise ProviderError(400, f"`{param}` refers to {ref!r}, which it does not define", param=param,
                                code="invalid_schema")
        return _convert({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs, param, depth + 1)
    out: dict[str, Any] = {}
    nullable = False
    kind = node.get("type")
    if isinstance(kind, list):
        nullable = "null" in kind
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": k.upper()} for k in kinds]
    if isinstance(kind, str):
        out["type"] = kind.upper()
    for key, value in node.items():
        if key not in _KEPT or key in ("type", "anyOf"):
            continue
        if key == "properties" and isinstance(value, dict):
            value = {name: _convert(sub, defs, param, depth + 1) for name, sub in value.items()}
        elif key == "items":
            value = _convert(value, defs, param, depth + 1)
        elif key == "format" and value not in _FORMATS.get(out.get("type", ""), ()):
            continue
        elif key == "enum":
            value = [str(v) for v in value]
        out[key] = value
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(kept) < len(branches)
        converted = [_convert(b, defs, param, depth + 1) for b in kept]
        if len(converted) == 1:
            out.update(converted[0])
        elif converted:
            out["anyOf"] = converted
    if "const" in node:
        out["enum"] = [str(node["const"])]
        out.setdefault("type", "STRING")
    if out.get("type") == "STRING" and "enum" in out:
        out["format"] = "enum"
    if nullable:
        out["nullable"] = True
    return out
