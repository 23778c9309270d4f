"""Built-in model catalog (sidecar.catalog): facts from LiteLLM's cost map, resolution, build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar import catalog

REPO = Path(__file__).resolve().parent.parent
SOURCE_NAME = "model_prices_and_context_window.json"
SOURCE_CANDIDATES = [
    REPO.parent / "shared" / "catalog-source" / SOURCE_NAME,
    Path("/work/shared/catalog-source") / SOURCE_NAME,
]
# 4,553 keys in the source minus the two non-model keys (sample_spec, fallback_generalizations).
ENTRIES = 4551


def _run(code: str) -> str:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_does_not_load_data() -> None:
    code = "import sidecar.catalog as c; print(c._catalog.cache_info().currsize, c._names_for.cache_info().currsize)"
    assert _run(code) == "0 0"  # nothing decoded yet
    code = "import sidecar.catalog as c; c.lookup('gpt-4o'); print(c._catalog.cache_info().currsize)"
    assert _run(code) == "1"


def test_package_has_no_runtime_json() -> None:
    text = (REPO / "sidecar" / "catalog" / "__init__.py").read_text()
    assert "import json" not in text and "/work/shared" not in text and "catalog-source" not in text


def test_source_info() -> None:
    info = catalog.source_info()
    assert info["version"] == "1.109.1"
    assert info["date"] == "2026-11-21"
    assert info["build_date"] == "2026-11-21"
    assert info["source"] == f"{SOURCE_NAME} (litellm 1.109.1 wheel, MIT)"
    assert info["entries"] == ENTRIES
    assert sum(1 for _ in catalog.all_entries()) == ENTRIES
    lic = (REPO / "sidecar" / "catalog" / "LICENSE-litellm").read_text()
    assert "MIT License" in lic and "Copyright (c) 2023 Berri AI" in lic


def test_gpt_4o_mini() -> None:
    info = catalog.lookup("gpt-4o-mini", "openai")
    assert info is not None
    assert info["key"] == "gpt-4o-mini"
    assert info["litellm_provider"] == "openai"
    assert info["mode"] == "chat"
    assert info["input_cost_per_token"] == 1.5e-07
    assert info["output_cost_per_token"] == 6e-07
    assert info["cache_read_input_token_cost"] == 7.5e-08
    assert info["cache_creation_input_token_cost"] is None
    assert info["max_input_tokens"] == 128000
    assert info["max_output_tokens"] == 16384
    assert info["max_tokens"] is None  # the source has no max_tokens anywhere
    assert info["supports_vision"] is True
    assert info["supports_function_calling"] is True
    assert info["supports_tool_choice"] is True
    assert "supports_reasoning" not in info and "supports_audio_input" not in info
    assert catalog.lookup("gpt-4o-mini") == info


def test_azure_entry() -> None:
    info = catalog.lookup("gpt-4o", "azure")
    assert info is not None and info["key"] == "azure/gpt-4o"
    assert info["litellm_provider"] == "azure"
    assert info["deprecation_date"] == "2027-04-14"
    assert info["input_cost_per_token"] == 2.5e-06 and info["output_cost_per_token"] == 1e-05
    assert info["supports_vision"] is True and "supports_pdf_input" not in info
    # the bare key belongs to openai, with different flags
    assert catalog.lookup("gpt-4o")["supports_pdf_input"] is True
    # a full key works with or without the provider
    assert catalog.lookup("azure/gpt-4o") == info == catalog.lookup("azure/gpt-4o", "azure")


def test_anthropic_and_groq_entries() -> None:
    info = catalog.lookup("claude-sonnet-4-5", "anthropic")
    assert info is not None and info["litellm_provider"] == "anthropic"
    assert info["input_cost_per_token"] == 3e-06 and info["output_cost_per_token"] == 1.5e-05
    assert info["cache_creation_input_token_cost"] == 3.75e-06
    assert info["cache_read_input_token_cost"] == 3e-07
    assert (info["max_input_tokens"], info["max_output_tokens"]) == (200000, 64000)
    assert info["supports_reasoning"] is True and info["supports_computer_use"] is True

    info = catalog.lookup("openai/gpt-oss-120b", "groq")
    assert info is not None and info["key"] == "groq/openai/gpt-oss-120b"
    assert info["litellm_provider"] == "groq"
    assert (info["max_input_tokens"], info["max_output_tokens"]) == (131072, 65536)
    assert info["input_cost_per_token"] == 1.5e-07 and info["output_cost_per_token"] == 6e-07


def test_false_flags_are_absent() -> None:
    info = catalog.lookup("anthropic.claude-opus-4-7", "bedrock")  # a bedrock_converse entry
    assert info is not None and info["litellm_provider"] == "bedrock_converse"
    assert info["supports_vision"] is True
    # false in the source
    assert "supports_assistant_prefill" not in info and "supports_sampling_params" not in info
    assert all(v is True for k, v in info.items() if k.startswith("supports_"))


def test_embedding_fields() -> None:
    info = catalog.lookup("text-embedding-3-small", "openai")
    assert info["mode"] == "embedding" and info["output_vector_size"] == 1536
    assert info["output_cost_per_token"] == 0.0
    vec = catalog.lookup("Cohere-Embed-V5-Fast", "azure_ai")["output_vector_size"]
    assert vec == 2048 and isinstance(vec, int)  # 2048.0 in the source


def test_provider_compatibility() -> None:
    # text-completion-openai counts as openai
    info = catalog.lookup("gpt-3.5-turbo-instruct", "openai")
    assert info is not None and info["litellm_provider"] == "text-completion-openai"
    assert catalog.lookup("gpt-3.5-turbo-instruct", "text-completion-openai") == info
    # azure_text counts as azure
    assert catalog.lookup("gpt-3.5-turbo-instruct-0914", "azure")["litellm_provider"] == "azure_text"
    # vertex_ai matches vertex_ai-*, for prefixed and bare keys
    vertex = {m: catalog.lookup(m, "vertex_ai")["litellm_provider"] for m in ("claude-3-5-haiku", "gemini-3.1-flash-lite")}
    assert vertex == {"claude-3-5-haiku": "vertex_ai-anthropic_models", "gemini-3.1-flash-lite": "vertex_ai-language-models"}
    # an incompatible provider never falls back to another provider's bare key
    assert catalog.lookup("gpt-4o-mini", "groq") is None
    assert catalog.lookup("claude-sonnet-4-5", "openai") is None
    assert catalog.lookup("azure/gpt-4o", "openai") is None


def test_unknown_model() -> None:
    assert catalog.lookup("no-such-model-xyz") is None
    assert catalog.lookup("no-such-model-xyz", "openai") is None
    assert catalog.lookup("sample_spec") is None
    assert catalog.lookup("fallback_generalizations") is None
    assert catalog.models_for_provider("no-such-provider") == []
    assert catalog.models_for_provider("") == []


def test_fresh_dicts() -> None:
    info = catalog.lookup("gpt-4o-mini", "openai")
    info["input_cost_per_token"] = 123.0
    info["supports_vision"] = False
    again = catalog.lookup("gpt-4o-mini", "openai")
    assert again["input_cost_per_token"] == 1.5e-07 and again["supports_vision"] is True
    catalog.models_for_provider("openai").clear()
    assert catalog.models_for_provider("openai")
    catalog.source_info()["entries"] = 0
    assert catalog.source_info()["entries"] == ENTRIES


def test_models_for_provider() -> None:
    openai = catalog.models_for_provider("openai")
    assert openai == sorted(openai) and len(openai) == len(set(openai))
    assert {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "gpt-3.5-turbo-instruct"} <= set(openai)
    assert not any(m.startswith(("low/", "1024-x-1024/", "openai/")) for m in openai)
    azure = catalog.models_for_provider("azure")
    assert "gpt-4o" in azure and "gpt-3.5-turbo-instruct-0914" in azure
    assert not any(m.startswith("azure/") for m in azure)
    assert "openai/gpt-oss-120b" in catalog.models_for_provider("groq")
    assert "claude-sonnet-4-5" in catalog.models_for_provider("anthropic")
    assert "anthropic.claude-opus-4-7" in catalog.models_for_provider("bedrock")
    for provider in ("openai", "azure", "groq", "anthropic", "bedrock", "vertex_ai", "gemini"):
        for name in catalog.models_for_provider(provider):
            assert catalog.lookup(name, provider) is not None, (provider, name)


def test_all_entries_match_lookup() -> None:
    for key, fields in catalog.all_entries():
        assert fields["key"] == key
        assert catalog.lookup(key) == fields


def test_committed_data_matches_build(tmp_path: Path) -> None:
    source = next((p for p in SOURCE_CANDIDATES if p.is_file()), None)
    if source is None:
        pytest.skip(f"catalog source {SOURCE_NAME} not available (only in the dev workspace)")
    out = tmp_path / "catalog.msgpack"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_catalog.py"), "--source", str(source), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    committed = REPO / "sidecar" / "catalog"
    rebuilt = out.read_bytes()
    assert rebuilt == (committed / "catalog.msgpack").read_bytes(), "stale data: run scripts/build_catalog.py"
    assert (tmp_path / "LICENSE-litellm").read_bytes() == (committed / "LICENSE-litellm").read_bytes()
