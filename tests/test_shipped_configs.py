"""The configs the project ships load and build an app (they are documentation users copy)."""

from __future__ import annotations

from pathlib import Path

from sidecar import keys
from sidecar.app import create_app
from sidecar.config import load_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def test_default_config_builds_the_mock_models():
    app = create_app(load_config(CONFIG_DIR / "sidecar.yaml"))
    names = app[keys.REGISTRY].group_names()
    assert names == ["mock-gpt", "mock-embedding", "mock-moderation", "mock-rerank"]
    assert not app[keys.CONFIG].general.master_key


def test_example_openai_config_builds_with_its_variables_set(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY", "SIDECAR_MASTER_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.setenv("AZURE_API_BASE", "https://example-resource.openai.azure.com")
    config = load_config(CONFIG_DIR / "example.openai.yaml")
    app = create_app(config)
    registry = app[keys.REGISTRY]
    assert {d.provider.name for d in registry} == {"openai", "azure", "groq", "deepseek"}
    assert len(registry.group("gpt-4o-mini")) == 2  # OpenAI and Azure in one group
    assert registry.resolve("openai/gpt-4.1")[1] == "gpt-4.1"
    assert config.general.master_key == "value-of-sidecar_master_key"


def test_example_more_config_builds_with_its_variables_set(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_AI_API_KEY", "VOYAGE_API_KEY", "SIDECAR_MASTER_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.setenv("AZURE_AI_API_BASE", "https://example-resource.services.ai.azure.com")
    app = create_app(load_config(CONFIG_DIR / "example.more.yaml"))
    providers = {d.provider.name for d in app[keys.REGISTRY]}
    assert providers == {"ollama", "ollama_chat", "azure_ai", "voyage", "text-completion-openai", "cerebras",
                         "deepinfra", "nvidia_nim", "sambanova", "lm_studio"}


def test_example_anthropic_config_builds_with_its_variables_set(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "AZURE_AI_API_KEY", "SIDECAR_MASTER_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.setenv("AZURE_AI_API_BASE", "https://example-resource.services.ai.azure.com")
    app = create_app(load_config(CONFIG_DIR / "example.anthropic.yaml"))
    registry = app[keys.REGISTRY]
    assert {d.provider.name for d in registry} == {"anthropic", "azure_ai"}
    assert len(registry.group("claude-sonnet")) == 2  # Anthropic and Azure AI Foundry in one group
    assert registry.resolve("anthropic/claude-opus-4-1")[1] == "claude-opus-4-1"


def test_example_google_config_builds_with_its_variables_set(monkeypatch):
    for name in ("GEMINI_API_KEY", "VERTEXAI_PROJECT", "SIDECAR_MASTER_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    app = create_app(load_config(CONFIG_DIR / "example.google.yaml"))
    registry = app[keys.REGISTRY]
    assert {d.provider.name for d in registry} == {"gemini", "vertex_ai"}
    assert len(registry.group("gemini-2.5-flash")) == 2  # the Gemini API and Vertex AI in one group


def test_example_cohere_config_builds_with_its_variables_set(monkeypatch):
    for name in ("COHERE_API_KEY", "SIDECAR_MASTER_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    app = create_app(load_config(CONFIG_DIR / "example.cohere.yaml"))
    deps = {d.model_name: d for d in app[keys.REGISTRY]}
    assert {name: (d.provider.name, d.upstream_model()) for name, d in deps.items()} == {
        "command-a": ("cohere", "command-a-03-2025"), "command-r": ("cohere_chat", "command-r-08-2024"),
        "cohere-embed": ("cohere", "embed-english-v3.0"), "cohere-rerank": ("cohere", "rerank-v3.5")}
    assert deps["command-a"].litellm_params["api_key"] == "value-of-cohere_api_key"


def test_example_bedrock_config_builds_with_its_variables_set(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SIDECAR_MASTER_KEY"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    app = create_app(load_config(CONFIG_DIR / "example.bedrock.yaml"))
    registry = app[keys.REGISTRY]
    assert {d.provider.name for d in registry} == {"bedrock"}
    assert registry.group_names() == ["claude-sonnet", "nova-lite", "llama-3.3-70b", "titan-embed", "cohere-embed"]
