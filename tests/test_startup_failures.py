"""Start-up failures and odd inputs end in one clear line or a 400, never a traceback or a 500."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.plugins import PluginError, get_plugin_manager

SIDECAR = str(Path(sys.executable).with_name("sidecar"))


def broken_plugin_dir(tmp_path: Path) -> Path:
    """A distribution whose llm_sidecar entry point names a module that does not exist."""
    dist = tmp_path / "site" / "sidecar_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sidecar-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[llm_sidecar]\nbroken = sidecar_no_such_module_xyz\n")
    return tmp_path / "site"


def test_a_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_plugin_dir(tmp_path)))
    with pytest.raises(PluginError, match=r"plugin 'broken' \(sidecar_no_such_module_xyz\) failed to load"):
        get_plugin_manager()


def test_serve_reports_a_broken_plugin_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(broken_plugin_dir(tmp_path))}
    proc = subprocess.run([SIDECAR, "serve", "--config", "config/sidecar.yaml", "--port", "0"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sidecar: plugin 'broken'")


def test_serve_exits_when_a_plugins_start_up_fails_after_others_started(tmp_path):
    """The database (and the spend log's connection, started first) are closed: their threads
    would keep the process alive after it reported the failure."""
    site = tmp_path / "site"
    dist = site / "sidecar_failstart-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sidecar-failstart\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[llm_sidecar]\nfailstart = sidecar_failstart\n")
    (site / "sidecar_failstart.py").write_text(
        "from sidecar import hookimpl\n\n@hookimpl\ndef sidecar_startup():\n    raise RuntimeError('no connection')\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list: []\ngeneral_settings:\n  database_url: sqlite:///{tmp_path}/sidecar.db\n")
    proc = subprocess.run([SIDECAR, "serve", "--config", str(config), "--port", "0"],
                          env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "sidecar: plugin 'failstart': sidecar_startup failed: RuntimeError: no connection")


def test_serve_reports_an_unopenable_database_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = tmp_path / "c.yaml"
    config.write_text(f"general_settings:\n  database_url: sqlite:///{blocker}/sub/sidecar.db\n")
    proc = subprocess.run([SIDECAR, "serve", "--config", str(config), "--port", "0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cannot open the database" in proc.stderr


async def test_empty_moderation_input_is_a_400(make_client):
    client = await make_client()
    resp = await client.post("/v1/moderations", json={"model": "mock-moderation", "input": []})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "input"


@pytest.mark.parametrize("n", [0, -1, 129])
async def test_mock_n_out_of_range_is_a_400(make_client, n):
    client = await make_client()
    resp = await client.post("/v1/chat/completions",
                             json={"model": "mock-gpt", "n": n, "messages": [{"role": "user", "content": "x"}]})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "n"


async def test_mock_refuses_absurd_dimensions(make_client):
    client = await make_client()
    resp = await client.post("/v1/embeddings", json={"model": "mock-embedding", "input": "x", "dimensions": 10**8})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "dimensions"
