#!/usr/bin/env python3
"""Extract the response schemas the gateway must honour from OpenAI's OpenAPI spec.

Writes the transitive ``$ref`` closure of a few component schemas, and the property names of
the request schemas, to a small, deterministic JSON file shipped with the conformance kit
(``sidecar/testing/openai_schemas.json`` by default), so tests, ours and plugin authors', can
validate answers and check params without the 3 MB spec being present.

Usage: scripts/extract_openai_schemas.py [--spec PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from sidecar.testing.spec import REQUEST_SCHEMAS, SCHEMA_KEYS, SCHEMA_LIST_KEYS, SCHEMA_MAP_KEYS

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "openai-openapi.yaml"
DEFAULT_OUT = REPO_ROOT / "sidecar" / "testing" / "openai_schemas.json"

ROOT_SCHEMAS: tuple[str, ...] = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "CreateModerationResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "ImagesResponse",
    "CreateTranscriptionResponseJson",
)
REF_PREFIX = "#/components/schemas/"
STRIP_KEYS = frozenset({"description", "example", "examples", "x-oaiMeta"})

def load_spec(path: Path) -> dict[str, Any]:
    """Parse the YAML spec, preferring the libyaml-backed loader."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


def _ref_name(ref: str) -> str:
    """Return the component name a local ``#/components/schemas/X`` ref points to."""
    if not ref.startswith(REF_PREFIX) or "/" in ref[len(REF_PREFIX):]:
        raise ValueError(f"unsupported $ref (only whole component schemas): {ref!r}")
    return ref[len(REF_PREFIX):].replace("~1", "/").replace("~0", "~")


def clean_schema(schema: Any, refs: set[str]) -> Any:
    """Copy ``schema`` minus annotation keys, collecting referenced names into ``refs``.

    Only schema positions are rewritten; property names and keyword values that are
    plain data (``enum``, ``default``, ``discriminator``, ...) are copied verbatim.
    """
    if not isinstance(schema, dict):
        return schema  # boolean schemas
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in STRIP_KEYS:
            continue
        if key == "$ref" and isinstance(value, str):
            refs.add(_ref_name(value))
            out[key] = value
        elif key in SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: clean_schema(sub, refs) for name, sub in value.items()}
        elif key in SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [clean_schema(sub, refs) for sub in value]
        elif key in SCHEMA_KEYS:
            if isinstance(value, list):  # legacy tuple-form "items"
                out[key] = [clean_schema(sub, refs) for sub in value]
            else:
                out[key] = clean_schema(value, refs)
        else:
            out[key] = value
    return out


def extract(spec: dict[str, Any], roots: tuple[str, ...] = ROOT_SCHEMAS) -> dict[str, Any]:
    """Return the cleaned transitive closure of ``roots`` from the spec's components."""
    available = spec["components"]["schemas"]
    result: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in result:
            continue
        if name not in available:
            raise KeyError(f"schema {name!r} not found in spec components")
        refs: set[str] = set()
        result[name] = clean_schema(available[name], refs)
        pending.extend(sorted(refs - result.keys()))
    return result


def property_names(spec: dict[str, Any], name: str) -> list[str]:
    """The property names of the component schema ``name``, through ``$ref`` and ``allOf``."""
    available = spec["components"]["schemas"]

    def walk(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            return walk(available[_ref_name(schema["$ref"])])
        names = set(schema.get("properties") or {})
        for sub in schema.get("allOf") or ():
            names |= walk(sub)
        return names

    return sorted(walk(available[name]))


def build_document(spec_path: Path) -> dict[str, Any]:
    """Build the full extract document (source metadata + component schemas)."""
    raw = spec_path.read_bytes()
    spec = load_spec(spec_path)
    source: dict[str, Any] = {
        "file": spec_path.name,
        "openapi": spec.get("openapi"),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "roots": list(ROOT_SCHEMAS),
    }
    info_version = (spec.get("info") or {}).get("version")
    if info_version is not None:
        source["info_version"] = str(info_version)
    requests = {name: property_names(spec, name) for name in sorted(set(REQUEST_SCHEMAS.values()))}
    return {"source": source, "components": {"schemas": extract(spec)}, "request_params": requests}


def render(spec_path: Path) -> str:
    """Serialize the extract deterministically (sorted keys, trailing newline)."""
    doc = build_document(spec_path)
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="OpenAPI YAML spec")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSON path")
    args = parser.parse_args(argv)
    if not args.spec.is_file():
        parser.error(f"spec not found: {args.spec}")
    text = render(args.spec)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    count = len(json.loads(text)["components"]["schemas"])
    print(f"wrote {args.out} ({count} schemas, {len(text.encode())} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
