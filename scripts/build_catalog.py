#!/usr/bin/env python3
"""Build the built-in model catalog (sidecar/catalog/catalog.msgpack) from LiteLLM's cost map.

    python scripts/build_catalog.py [--source PATH] [--out PATH] [--build-date YYYY-MM-DD]

The source is LiteLLM's MIT-licensed ``model_prices_and_context_window.json``. Only the fields the
sidecar uses are kept; the output is deterministic (sorted keys, build date defaulting to the
source date), so re-running on the same source gives byte-identical output. The LiteLLM licence
notice next to the source is copied beside the output as ``LICENSE-litellm``.

Output format (msgpack map), format 1:
  format, source, version, date, build_date, entries: header
  fields:    names of the value columns of a row (see FIELDS)
  flags:     sorted names of the supports_* flags; rows refer to them by index
  providers: sorted litellm_provider values; rows refer to them by index
  modes:     sorted mode values; rows refer to them by index
  models:    {catalog key: [flag indices, provider index, mode index, *other FIELDS]}
             with trailing absent (nil) columns trimmed.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "catalog-source" / "model_prices_and_context_window.json"
DEFAULT_OUT = REPO / "sidecar" / "catalog" / "catalog.msgpack"
SOURCE_VERSION = "1.109.1"
SOURCE_DATE = "2026-11-21"
LICENSE_NAME = "LICENSE-litellm"
FORMAT = 1

# Value columns, in row order (after the flag-index list). Keep in sync with sidecar/catalog.
FIELDS = (
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "max_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_creation_input_token_cost",
    "cache_read_input_token_cost",
    "output_vector_size",
    "deprecation_date",
)
INT_FIELDS = {"max_input_tokens", "max_output_tokens", "max_tokens", "output_vector_size"}
NUM_FIELDS = INT_FIELDS | {f for f in FIELDS if "cost" in f}
# Top-level keys that are not model entries: the schema example and LiteLLM's regex fallback rules.
NON_MODEL_KEYS = ("sample_spec", "fallback_generalizations")


def _value(key: str, name: str, value: Any) -> Any:
    """Validate and normalise one kept field."""
    if name in NUM_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{key}: {name}={value!r} is not a finite number")
        if name in INT_FIELDS:
            if value != int(value):
                raise ValueError(f"{key}: {name}={value!r} is not integral")
            return int(value)  # a few sources say 2048.0
        return value
    if not isinstance(value, str):
        raise ValueError(f"{key}: {name}={value!r} is not a string")
    return value


def convert(source: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Kept, normalised entries ({key: {field: value, "flags": [...]}}) and skipped keys."""
    entries: dict[str, Any] = {}
    skipped = []
    for key, info in source.items():
        if key in NON_MODEL_KEYS or not isinstance(info, dict):
            skipped.append(key)
            continue
        entry = {f: _value(key, f, info[f]) for f in FIELDS if info.get(f) is not None}
        entry["flags"] = sorted(k for k, v in info.items() if k.startswith("supports_") and v is True)
        entries[key] = entry
    return entries, skipped


def build(entries: dict[str, Any], *, source_name: str, version: str, date: str, build_date: str) -> bytes:
    """Encode converted `entries` (see convert) and the header as msgpack bytes."""
    flags = sorted({f for e in entries.values() for f in e["flags"]})
    providers = sorted({e["litellm_provider"] for e in entries.values() if "litellm_provider" in e})
    modes = sorted({e["mode"] for e in entries.values() if "mode" in e})
    flag_ix = {f: i for i, f in enumerate(flags)}
    prov_ix = {p: i for i, p in enumerate(providers)}
    mode_ix = {m: i for i, m in enumerate(modes)}
    models = {}
    for key in sorted(entries):
        e = entries[key]
        row: list[Any] = [[flag_ix[f] for f in e["flags"]]]
        row.append(prov_ix.get(e.get("litellm_provider")))
        row.append(mode_ix.get(e.get("mode")))
        row.extend(e.get(f) for f in FIELDS[2:])
        while row[-1] is None:
            row.pop()
        models[key] = row
    doc = {
        "format": FORMAT,
        "source": f"{source_name} (litellm {version} wheel, MIT)",
        "version": version,
        "date": date,
        "build_date": build_date,
        "entries": len(models),
        "fields": list(FIELDS),
        "flags": flags,
        "providers": providers,
        "modes": modes,
        "models": models,
    }
    return msgspec.msgpack.encode(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="LiteLLM cost map JSON")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .msgpack path")
    ap.add_argument("--source-version", default=SOURCE_VERSION, help="litellm version of the source")
    ap.add_argument("--source-date", default=SOURCE_DATE, help="date the source was taken")
    ap.add_argument("--build-date", help="recorded build date (default: the source date)")
    args = ap.parse_args(argv)

    source = json.loads(args.source.read_text(encoding="utf-8"))
    entries, skipped = convert(source)
    data = build(
        entries,
        source_name=args.source.name,
        version=args.source_version,
        date=args.source_date,
        build_date=args.build_date or args.source_date,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    lic = args.source.with_name(LICENSE_NAME)
    if lic.exists():
        shutil.copyfile(lic, args.out.with_name(LICENSE_NAME))
    else:
        print(f"warning: {lic} not found; {LICENSE_NAME} not copied", file=sys.stderr)
    print(f"wrote {args.out} ({len(data)} bytes, {len(entries)} entries; skipped {', '.join(skipped)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
