"""``sidecar list`` and ``sidecar sync --models``, run as the installed command on a temp
config and database (no server for the CLI itself)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import yaml

from registry_helpers import AUTH, MASTER_KEY, free_port, start_upstream
from sidecar import catalog

SIDECAR = str(Path(sys.executable).parent / "sidecar")
CUSTOM = "my-custom-finetune-xyz"  # not in the shipped catalog


def write_config(tmp_path: Path, models: list[dict]) -> tuple[Path, dict]:
    data = {"model_list": models, "general_settings": {
        "master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'cli.db'}"}}
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, data


async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SIDECAR_DATABASE_URL", "SIDECAR_CONFIG")}
    proc = await asyncio.create_subprocess_exec(SIDECAR, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


def table(text: str) -> dict[str, list[str]]:
    """``sidecar list`` output: header and rows by group, cells split on runs of 2+ spaces."""
    lines = [line for line in text.splitlines() if line.strip()]
    rows = {}
    for line in lines:
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


async def test_list_prints_groups_with_catalog_values(make_client, tmp_path):
    path, data = write_config(tmp_path, [
        {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-cli-list-1",
                                                         "api_base": "http://cli-secret-host.internal/v1"}},
        {"model_name": "embedder", "litellm_params": {"model": "openai/text-embedding-3-small"}},
        {"model_name": "mixed", "litellm_params": {"model": "mock/m"}},
        {"model_name": "mixed", "litellm_params": {"model": "echo/e"}},
        {"model_name": "openai/*", "litellm_params": {"model": "openai/*"}},
    ])
    # a deployment added over the API is listed too (the CLI reads the database)
    client = await make_client(data)
    resp = await client.post("/model/new", headers=AUTH, json={
        "model_name": "priced-mock", "litellm_params": {"model": "mock/p"},
        "model_info": {"max_input_tokens": 32000, "input_cost_per_token": 1e-6, "output_cost_per_token": 2.5e-6,
                       "mode": "chat", "supports_vision": True}})
    assert resp.status == 200
    await client.close()

    code, out, err = await run("list", "--config", str(path))
    assert code == 0, err
    rows = table(out)
    assert rows["GROUP"] == ["GROUP", "PROVIDER", "CONTEXT", "$/1M IN", "$/1M OUT", "CAPABILITIES"]
    facts = catalog.lookup("gpt-4o-mini", "openai")
    assert rows["gpt-4o-mini"][:5] == ["gpt-4o-mini", "openai", f"{facts['max_input_tokens']:,}",
                                       f"{facts['input_cost_per_token'] * 1e6:.2f}",
                                       f"{facts['output_cost_per_token'] * 1e6:.2f}"]
    assert rows["gpt-4o-mini"][2:5] == ["128,000", "0.15", "0.60"]
    caps = rows["gpt-4o-mini"][5]
    assert caps.startswith("chat") and "vision" in caps and "function_calling" in caps
    assert rows["embedder"][1] == "openai" and rows["embedder"][5].startswith("embedding")
    assert rows["mixed"][1] == "mock,echo"
    assert rows["priced-mock"][1:5] == ["mock", "32,000", "1.00", "2.50"]
    assert rows["priced-mock"][5] == "chat, vision"
    assert "openai/*" in rows
    assert "sk-cli-list-1" not in out + err and "cli-secret-host" not in out + err


async def test_list_reports_a_bad_config(tmp_path):
    code, out, err = await run("list", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err and "Traceback" not in err


async def test_sync_stores_live_models_which_wildcards_then_list(make_client, tmp_path, aiohttp_server):
    up = await start_upstream(aiohttp_server, models=["gpt-4o-mini", CUSTOM])
    assert catalog.lookup(CUSTOM, "openai") is None and CUSTOM not in catalog.models_for_provider("openai")
    path, data = write_config(tmp_path, [
        {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": up.base_url,
                                                      "api_key": "sk-sync-secret-123456"}},
        {"model_name": "local", "litellm_params": {"model": "mock/local"}},
    ])
    before = await make_client(data)
    listed = (await (await before.get("/v1/models", headers=AUTH)).json())["data"]
    assert f"openai/{CUSTOM}" not in {m["id"] for m in listed}
    await before.close()

    code, out, err = await run("sync", "--models", "--providers", "openai", "--config", str(path))
    assert code == 0, (out, err)
    assert "openai: 2 models stored" in out
    assert "mock" not in out  # only the providers asked for
    assert up.list_calls == 1 and up.auth_headers[-1] == "Bearer sk-sync-secret-123456"
    assert "1/1" in err  # the progress bar
    assert "sk-sync-secret-123456" not in out + err

    after = await make_client(data)
    ids = {m["id"] for m in (await (await after.get("/v1/models", headers=AUTH)).json())["data"]}
    assert f"openai/{CUSTOM}" in ids
    assert "openai/gpt-4o-mini" in ids and "openai/tts-1" in ids  # the shipped catalog stays the fallback
    group = (await (await after.get("/model_group/info", headers=AUTH,
                                    params={"model_group": f"openai/{CUSTOM}"})).json())["data"]
    assert [g["model_group"] for g in group] == [f"openai/{CUSTOM}"] and group[0]["providers"] == ["openai"]
    api = (await (await after.get("/api/models", headers=AUTH, params={"provider": "openai"})).json())["models"]
    assert f"openai/{CUSTOM}" in {m["id"] for m in api}
    await after.close()

    # a second sync replaces the stored list
    up.models = ["gpt-4o-mini"]
    code, out, err = await run("sync", "--models", "--config", str(path))
    assert code == 0, (out, err)
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["openai"] == "1 models stored" and "mock" in lines  # every configured provider asked
    again = await make_client(data)
    ids = {m["id"] for m in (await (await again.get("/v1/models", headers=AUTH)).json())["data"]}
    assert f"openai/{CUSTOM}" not in ids


async def test_sync_reports_and_skips_an_unreachable_provider(tmp_path, aiohttp_server):
    up = await start_upstream(aiohttp_server, models=[CUSTOM])
    dead = f"http://127.0.0.1:{free_port()}/v1"
    path, _ = write_config(tmp_path, [
        {"model_name": "o", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": up.base_url,
                                               "api_key": "sk-live-1234567"}},
        {"model_name": "g", "litellm_params": {"model": "groq/llama-3.1-8b-instant", "api_base": dead,
                                               "api_key": "sk-groq-secret-7654321"}},
    ])
    code, out, err = await run("sync", "--models", "--config", str(path))
    assert code == 0, (out, err)  # one provider synced: the run did something useful
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["openai"] == "1 models stored"
    assert lines["groq"].startswith("unreachable, skipped")
    assert "sk-groq-secret-7654321" not in out + err

    code, out, err = await run("sync", "--models", "--providers", "groq", "--config", str(path))
    assert code == 1, (out, err)  # nothing could be synced
    assert out.strip().startswith("groq: unreachable, skipped")
    assert "Traceback" not in err

    code, out, err = await run("sync", "--models", "--providers", "nosuch", "--config", str(path))
    assert code == 2 and "nosuch" in err and "openai" in err and "Traceback" not in err
    code, out, err = await run("sync", "--config", str(path))
    assert code == 2 and "--models" in err
