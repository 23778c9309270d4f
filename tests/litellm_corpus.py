"""LiteLLM's own example configs (``litellm/proxy/*.yaml`` and ``litellm/proxy/example_config_yaml/*.yaml``
in the ``litellm`` wheel), downloaded once with pip (no install) into ``tests/.litellm-corpus/``
(git-ignored). :func:`corpus` says why when the download fails, so the tests can skip loudly."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

LITELLM_VERSION = "1.110.2"
CACHE = Path(__file__).resolve().parent / ".litellm-corpus" / LITELLM_VERSION
_MEMBER = re.compile(r"litellm/proxy/(example_config_yaml/)?[^/]+\.yaml")


def corpus() -> tuple[dict[str, Path], str | None]:
    """``{name: path}`` of every example config (name: the path under ``litellm/proxy/``), and
    None; or ``{}`` and why they could not be had."""
    configs = CACHE / "configs"
    if not configs.is_dir():
        why = _download_and_extract(configs)
        if why:
            return {}, why
    found = sorted(configs.rglob("*.yaml"))
    if not found:
        return {}, f"no example configs in the litellm {LITELLM_VERSION} wheel (under {configs})"
    return {str(p.relative_to(configs)): p for p in found}, None


def _download_and_extract(configs: Path) -> str | None:
    wheels = CACHE / "wheel"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("litellm-*.whl")):
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               # (the wheel is built for x86-64 Linux; only its YAML files are read, so any machine
               # may fetch it)
               "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
               f"litellm=={LITELLM_VERSION}", "-d", str(wheels)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"pip download litellm=={LITELLM_VERSION} failed: {exc}"
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return f"pip download litellm=={LITELLM_VERSION} failed ({done.returncode}): {tail}"
    [wheel] = list(wheels.glob("litellm-*.whl"))[:1] or [None]
    if wheel is None:
        return f"pip download left no litellm wheel in {wheels}"
    tmp = configs.with_name(configs.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted run
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if _MEMBER.fullmatch(member):
                target = tmp / member.removeprefix("litellm/proxy/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
    tmp.rename(configs)  # whole or not at all: a half-extracted folder is never used
    return None
