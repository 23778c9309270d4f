"""Big configs: the YAML parse is cached as msgpack keyed by the file's hash."""

from __future__ import annotations

import os

import pytest
import yaml

from sidecar import config as config_module
from sidecar.config import load_config


@pytest.fixture
def big_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SIDECAR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BIG_KEY", "sk-from-env-123456")
    models = [{"model_name": f"m{i}", "litellm_params": {"model": "mock/m", "api_key": "os.environ/BIG_KEY"}}
              for i in range(5000)]
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({"model_list": models}))
    assert path.stat().st_size >= config_module.BIG_CONFIG_BYTES
    return path


def test_second_load_reads_the_cache_and_gives_the_same_config(big_config, tmp_path, monkeypatch):
    first = load_config(big_config)
    [cache] = list((tmp_path / "cache").iterdir())
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    assert b"sk-from-env-123456" not in cache.read_bytes()  # env references stay unresolved

    def no_yaml(*args, **kwargs):
        raise AssertionError("YAML was parsed again")

    monkeypatch.setattr(yaml, "load", no_yaml)
    second = load_config(big_config)
    assert [d.model_name for d in second.model_list] == [d.model_name for d in first.model_list]
    assert second.model_list[42].litellm_params["api_key"] == "sk-from-env-123456"


def test_a_changed_file_or_a_broken_cache_is_parsed_again(big_config, tmp_path):
    load_config(big_config)
    [cache] = list((tmp_path / "cache").iterdir())
    cache.write_bytes(b"\xc1 not msgpack")
    assert len(load_config(big_config).model_list) == 5000
    big_config.write_text(big_config.read_text().replace("m4999", "renamed"))
    assert load_config(big_config).model_list[-1].model_name == "renamed"
    assert len(os.listdir(tmp_path / "cache")) == 2


def test_small_configs_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SIDECAR_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "small.yaml"
    path.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: mock/a}\n")
    assert load_config(path).model_list[0].model_name == "a"
    assert not (tmp_path / "cache").exists()
