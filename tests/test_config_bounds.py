"""Configs that cannot be right stop `sidecar serve` with one line naming the path; a config
without models still starts, and says so."""

from __future__ import annotations

import json
import urllib.request

import pytest
from gateway_helpers import Server, run_sidecar, write_config

MODEL = {"model_name": "m", "litellm_params": {"model": "mock/m"}}


def with_general(**settings) -> dict:
    return {"model_list": [MODEL], "general_settings": settings}


def with_params(**params) -> dict:
    return {"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m", **params}}]}


BROKEN = [
    ("graceful_shutdown_seconds", with_general(graceful_shutdown_seconds=-5), "$.general_settings.graceful_shutdown_seconds"),
    ("graceful_shutdown_zero", with_general(graceful_shutdown_seconds=0), "$.general_settings.graceful_shutdown_seconds"),
    ("max_request_size_mb", with_general(max_request_size_mb=-1), "$.general_settings.max_request_size_mb"),
    ("request_head_timeout", with_general(request_head_timeout=0), "$.general_settings.request_head_timeout"),
    ("keepalive_timeout", with_general(keepalive_timeout=-1), "$.general_settings.keepalive_timeout"),
    ("max_upstream_connections", with_general(max_upstream_connections=0),
     "$.general_settings.max_upstream_connections"),
    ("per_host", with_general(max_upstream_connections_per_host=-3),
     "$.general_settings.max_upstream_connections_per_host"),
    ("timeout", with_params(timeout=0), "$.model_list[0].litellm_params.timeout"),
    ("stream_timeout", with_params(stream_timeout=-2.5), "$.model_list[0].litellm_params.stream_timeout"),
    ("wrong_type", with_general(keepalive_timeout="long"), "$.general_settings.keepalive_timeout"),
]


@pytest.mark.parametrize(("name", "data", "path"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_negative_or_zero_duration_or_size_stops_start_up_naming_the_path(tmp_path, name, data, path):
    cfg = write_config(tmp_path / f"{name}.yaml", data)
    out = run_sidecar("serve", "--config", str(cfg), "--port", "0", timeout=30)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("sidecar: ") and path in line, line
    if name != "wrong_type":
        assert "> 0" in line or ">= 1" in line, line


@pytest.mark.parametrize("text", ["", "\n\n", "# model_list: to come\n"])
def test_an_empty_config_file_is_a_start_up_error_that_says_so(tmp_path, text):
    cfg = tmp_path / "empty.yaml"
    cfg.write_text(text)
    out = run_sidecar("serve", "--config", str(cfg), "--port", "0", timeout=30)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "no YAML document" in out.stderr and str(cfg) in out.stderr


def test_a_config_without_models_starts_and_says_so(tmp_path):
    cfg = write_config(tmp_path / "none.yaml", {"model_list": [],
                                                  "general_settings": {"database_url": f"sqlite:///{tmp_path}/s.db"}})
    with Server(cfg, tmp_path) as server:
        server.wait_ready()
        with urllib.request.urlopen(server.url + "/health/readiness", timeout=10) as resp:
            assert resp.status == 200
            body = json.loads(resp.read())
        assert body["status"] == "connected" and body["deployments"] == 0
        assert "no deployments" in body["warning"]
        assert "WARNING sidecar: no deployments" in server.output()
