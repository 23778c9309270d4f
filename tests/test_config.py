"""The LiteLLM-style config: env references, start-up errors with their YAML path, LiteLLM
sections, the CLI's --help, $SIDECAR_CONFIG and $SIDECAR_DATABASE_URL."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from sidecar import cli
from sidecar.app import create_app
from sidecar.config import ConfigError, load_config, parse_config

from gateway_helpers import Server, run_sidecar, write_config

GOOD_ENTRY = {"model_name": "m", "litellm_params": {"model": "mock/m"}}


def entry(**params) -> dict:
    return {"model_name": "m", "litellm_params": {"model": "mock/m", **params}}


# ---------------------------------------------------------------- parsing


def test_environment_references_resolve(monkeypatch):
    monkeypatch.setenv("TEST_CFG_KEY", "sk-from-env")
    monkeypatch.setenv("TEST_CFG_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TEST_CFG_MASTER", "sk-master-env")
    config = parse_config({
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": "mock/m", "api_key": "os.environ/TEST_CFG_KEY", "api_base": "os.environ/TEST_CFG_BASE",
            "extra_headers": {"X-Team": "os.environ/TEST_CFG_KEY"}, "tags": ["os.environ/TEST_CFG_BASE"]}}],
        "general_settings": {"master_key": "os.environ/TEST_CFG_MASTER"},
    })
    [dep] = config.model_list
    assert dep.litellm_params["api_key"] == "sk-from-env"
    assert dep.litellm_params["api_base"] == "http://127.0.0.1:9/v1"
    assert dep.litellm_params["extra_headers"] == {"X-Team": "sk-from-env"}
    assert dep.litellm_params["tags"] == ["http://127.0.0.1:9/v1"]
    assert dep.raw_params["api_key"] == "os.environ/TEST_CFG_KEY", "ids hash the params as written"
    assert config.general.master_key == "sk-master-env"


@pytest.mark.parametrize(("data", "path", "words"), [
    ({"model_list": [entry(api_key="os.environ/TEST_CFG_UNSET_VAR")]},
     "$.model_list[0].litellm_params.api_key", ("TEST_CFG_UNSET_VAR", "not set")),
    ({"model_list": [GOOD_ENTRY], "general_settings": {"master_key": "os.environ/TEST_CFG_UNSET_VAR"}},
     "$.general_settings.master_key", ("TEST_CFG_UNSET_VAR",)),
    ({"model_list": [GOOD_ENTRY], "general_settings": {"master_kye": "x"}},
     "$.general_settings", ("master_kye", "did you mean 'master_key'")),
    ({"model_list": [GOOD_ENTRY], "router_settings": {"num_retires": 2}},
     "$.router_settings", ("num_retires", "did you mean 'num_retries'")),
    ({"model_list": [{"model_name": "m", "litellm_param": {"model": "mock/m"}}]},
     "$.model_list[0]", ("litellm_param", "did you mean 'litellm_params'")),
    ({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}, "modelinfo": {}}]},
     "$.model_list[0]", ("modelinfo", "model_info")),
    ({"model_list": [entry(timeout="soon")]}, "$.model_list[0].litellm_params.timeout", ("Expected",)),
    ({"model_list": [entry(drop_params="maybe")]}, "$.model_list[0].litellm_params.drop_params", ("bool",)),
    ({"model_list": [{"model_name": "m", "litellm_params": {"api_key": "k"}}]},
     "$.model_list[0].litellm_params", ("model",)),
    ({"model_list": [{"model_name": 5, "litellm_params": {"model": "mock/m"}}]}, "$.model_list[0].model_name",
     ("str",)),
    ({"model_list": [GOOD_ENTRY], "general_settings": {"max_request_size_mb": "big"}},
     "$.general_settings.max_request_size_mb", ("float",)),
    ({"model_list": [GOOD_ENTRY], "general_settings": {"graceful_shutdown_seconds": [1]}},
     "$.general_settings.graceful_shutdown_seconds", ("Expected",)),
    ({"model_list": [GOOD_ENTRY], "router_settings": {"num_retries": "many"}}, "$.router_settings.num_retries",
     ("int",)),
    ({"model_list": [GOOD_ENTRY], "general_settings": ["master_key"]}, "$.general_settings", ("mapping",)),
    ({"model_list": [GOOD_ENTRY], "router_settings": "fast"}, "$.router_settings", ("mapping",)),
    ({"model_list": {"m": GOOD_ENTRY}}, "$.model_list", ("list",)),
    ({"model_list": [GOOD_ENTRY], "modle_list": []}, "$.modle_list", ("unknown section", "model_list")),
    ({"model_list": [GOOD_ENTRY], "general_settings": {"database_url": "postgresql://db/sidecar"}},
     "$.general_settings.database_url", ("sqlite",)),
])
def test_mistakes_fail_with_their_path(data, path, words):
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="bad.yaml")
    message = str(info.value)
    assert message.startswith(f"bad.yaml: {path}:"), message
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        parse_config(["model_list"], source="bad.yaml")


def test_unknown_provider_fails_at_start_up():
    config = parse_config({"model_list": [GOOD_ENTRY, {"model_name": "x", "litellm_params": {"model": "nosuch/x"}}]},
                          source="bad.yaml")
    with pytest.raises(ConfigError) as info:
        create_app(config)
    message = str(info.value)
    assert message.startswith("bad.yaml: $.model_list[1].litellm_params.model:")
    assert "nosuch" in message and "mock" in message and "echo" in message


@pytest.mark.parametrize(("model", "words"), [
    ("gpt-4o-unheard-of", ("not in the catalog", "prefix", "openai/gpt-4o-unheard-of")),
    ("jamba-1.5-large", ("'ai21'", "no installed plugin provides")),
])
def test_model_without_a_known_provider_fails_at_start_up(model, words):
    config = parse_config({"model_list": [{"model_name": "x", "litellm_params": {"model": model}}]},
                          source="bad.yaml")
    with pytest.raises(ConfigError, match=r"^bad\.yaml: \$\.model_list\[0\]\.litellm_params\.model: ") as info:
        create_app(config)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_litellm_sections_are_accepted_with_a_warning(monkeypatch):
    monkeypatch.delenv("TEST_CFG_FROM_SECTION", raising=False)
    config = parse_config({
        "model_list": [GOOD_ENTRY],
        "litellm_settings": {"drop_params": True, "callbacks": ["langfuse"]},
        "callback_settings": {},
        "environment_variables": {"TEST_CFG_FROM_SECTION": "set-by-config"},
        "general_settings": {"store_model_in_db": True, "master_key": "sk-x"},
    })
    [warned] = config.warnings  # one warning names every key not acted on
    assert "callback_settings" in warned  # (a top-level section here: LiteLLM reads it in litellm_settings)
    assert "litellm_settings.callbacks" not in warned and config.callbacks == ["langfuse"]  # (warned at start-up
    # when no plugin is registered under the name)
    assert "drop_params" not in warned and config.router.drop_params is True  # a router key: acted on
    assert "general_settings.store_model_in_db" in warned
    # environment_variables is applied (LiteLLM sets them), so it is not "unused"
    assert "environment_variables" not in warned
    assert os.environ["TEST_CFG_FROM_SECTION"] == "set-by-config"
    monkeypatch.delenv("TEST_CFG_FROM_SECTION")
    assert config.general.master_key == "sk-x"


def test_unknown_litellm_params_go_to_the_provider():
    config = parse_config({"model_list": [entry(top_k=3, custom_header="x", mock_delay=0.1)]})
    assert config.model_list[0].litellm_params == {"model": "mock/m", "top_k": 3, "custom_header": "x",
                                                   "mock_delay": 0.1}


def test_database_url_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SIDECAR_DATABASE_URL", raising=False)
    config = parse_config({"general_settings": {"database_url": f"sqlite:///{tmp_path}/from-config.db"}})
    assert config.database_path == f"{tmp_path}/from-config.db"
    monkeypatch.setenv("SIDECAR_DATABASE_URL", f"sqlite:///{tmp_path}/from-env.db")
    assert config.database_path == f"{tmp_path}/from-env.db"
    monkeypatch.setenv("SIDECAR_DATABASE_URL", "postgresql://elsewhere")
    with pytest.raises(ConfigError, match="SIDECAR_DATABASE_URL"):
        config.database_path


def test_load_config_reads_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_list:\n  - model_name: m\n    litellm_params:\n      model: mock/m\n"
                    "router_settings: {}\ngeneral_settings:\n  max_request_size_mb: 2\n")
    config = load_config(path)
    assert [d.model_name for d in config.model_list] == ["m"]
    assert config.general.max_request_size_mb == 2.0
    assert config.source == str(path)
    path.write_text("model_list: [\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line 2") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_shipped_default_config_loads():
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config" / "sidecar.yaml")
    assert {d.model_name for d in config.model_list} >= {"mock-gpt", "mock-embedding", "mock-moderation"}
    assert config.warnings == []


# ---------------------------------------------------------------- the CLI


BAD_CONFIGS = {
    "missing-env": ({"model_list": [entry(api_key="os.environ/TEST_CFG_UNSET_VAR")]},
                    "$.model_list[0].litellm_params.api_key"),
    "general-typo": ({"model_list": [GOOD_ENTRY], "general_settings": {"master_kye": "x"}}, "$.general_settings"),
    "router-typo": ({"model_list": [GOOD_ENTRY], "router_settings": {"num_retires": 1}}, "$.router_settings"),
    "entry-typo": ({"model_list": [{"model_name": "m", "litellm_parms": {"model": "mock/m"}}]}, "$.model_list[0]"),
    "wrong-type": ({"model_list": [entry(timeout="soon")]}, "$.model_list[0].litellm_params.timeout"),
    "unknown-provider": ({"model_list": [{"model_name": "m", "litellm_params": {"model": "nosuch/m"}}]},
                         "$.model_list[0].litellm_params.model"),
    "not-a-mapping": ({"model_list": [GOOD_ENTRY], "general_settings": [1]}, "$.general_settings"),
    "bad-database": ({"model_list": [GOOD_ENTRY], "general_settings": {"database_url": "mysql://x"}},
                     "$.general_settings.database_url"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_serve_refuses_a_bad_config_in_one_line(name, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TEST_CFG_UNSET_VAR", raising=False)
    data, path = BAD_CONFIGS[name]
    config = write_config(tmp_path / "bad.yaml", data)
    code = cli.main(["serve", "--config", str(config), "--port", "0"])
    out, err = capsys.readouterr()
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith(f"sidecar: {config}: {path}:"), line
    assert out == ""


@pytest.mark.parametrize("name", ["missing-env", "general-typo", "unknown-provider"])
def test_serve_subprocess_exits_non_zero_without_traceback(name, tmp_path):
    data, path = BAD_CONFIGS[name]
    config = write_config(tmp_path / "bad.yaml", data)
    result = run_sidecar("serve", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"{config}: {path}:" in line


def test_serve_reports_unreadable_and_invalid_files(tmp_path):
    result = run_sidecar("serve", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "absent.yaml" in line and "Traceback" not in result.stderr
    (tmp_path / "broken.yaml").write_text("model_list:\n  - model_name: [\n")
    result = run_sidecar("serve", "--config", str(tmp_path / "broken.yaml"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "broken.yaml" in line and "invalid YAML" in line


def test_sidecar_config_environment_variable(tmp_path):
    bad = write_config(tmp_path / "from-env.yaml", BAD_CONFIGS["general-typo"][0])
    result = run_sidecar("serve", "--port", "0", env={"SIDECAR_CONFIG": str(bad)}, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}: $.general_settings" in result.stderr
    # --config wins over $SIDECAR_CONFIG
    other = write_config(tmp_path / "flag.yaml", BAD_CONFIGS["router-typo"][0])
    result = run_sidecar("serve", "--config", str(other), "--port", "0", env={"SIDECAR_CONFIG": str(bad)})
    assert result.returncode == 2
    assert f"{other}: $.router_settings" in result.stderr


def test_serve_uses_sidecar_config_and_database_url_env(tmp_path):
    config = write_config(tmp_path / "good.yaml", {
        "model_list": [{"model_name": "from-env-config", "litellm_params": {"model": "mock/x"}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/config.db"},
        "litellm_settings": {"drop_params": True, "telemetry": False},
    })
    env_db = tmp_path / "env" / "env.db"
    with Server(None, tmp_path, env={"SIDECAR_CONFIG": str(config),
                                     "SIDECAR_DATABASE_URL": f"sqlite:///{env_db}"}) as server:
        server.wait_ready()
        with urllib.request.urlopen(server.url + "/v1/models", timeout=10) as resp:
            models = json.load(resp)
        assert [m["id"] for m in models["data"]] == ["from-env-config"]
        assert env_db.exists()
        assert not (tmp_path / "config.db").exists()
        assert any("WARNING" in line and "litellm_settings.telemetry" in line for line in server.output().splitlines())


def test_help():
    result = run_sidecar("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "plugins" in result.stdout
    result = run_sidecar("serve", "--help")
    assert result.returncode == 0
    for word in ("--config", "--host", "--port", "SIDECAR_CONFIG", "SIGTERM", "graceful_shutdown_seconds"):
        assert word in result.stdout, word
    result = run_sidecar("plugins", "--help")
    assert result.returncode == 0
    assert "--json" in result.stdout and "llm_sidecar" in result.stdout


def test_no_command_prints_help(capsys):
    assert cli.main([]) != 0
    assert "serve" in capsys.readouterr().out
