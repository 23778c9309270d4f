"""``sidecar serve`` imports aiohttp with its CA loading in a thread: the contexts end up as a
plain import makes them, and the environment as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, ssl, sys
before = os.environ.get("SSL_CERT_FILE")
from sidecar import tls_startup
tls_startup.import_aiohttp()
deferred = tls_startup._loading is not None
during = os.environ.get("SSL_CERT_FILE")
tls_startup.wait()
import aiohttp.connector as c
plain = ssl.create_default_context()
print(json.dumps({
    "deferred": deferred, "env_before": before, "env_after": during,
    "verified": c._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "unverified": c._SSL_CONTEXT_UNVERIFIED.cert_store_stats()["x509_ca"],
    "plain": plain.cert_store_stats()["x509_ca"],
}))
"""


def probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def ca_file() -> str:
    import ssl

    cafile = ssl.get_default_verify_paths().cafile
    if cafile is None:
        pytest.skip("this machine has no CA file for OpenSSL to load")
    return cafile


@pytest.mark.parametrize("named", [True, False], ids=["SSL_CERT_FILE set", "OpenSSL's default file"])
def test_the_contexts_get_every_ca_of_a_plain_import_and_the_environment_is_left_as_it_was(named):
    cafile = ca_file()
    env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    if named:
        env["SSL_CERT_FILE"] = cafile
    result = probe(env)
    if not named and result["plain"] == 0:
        pytest.skip("OpenSSL's default CA file is not where Python says")
    assert result["deferred"] is True
    assert result["env_after"] == result["env_before"] == (cafile if named else None)
    assert result["verified"] == result["unverified"] == result["plain"] > 0


def test_a_process_that_imported_aiohttp_already_gets_nothing_deferred():
    code = ("import aiohttp; from sidecar import tls_startup; tls_startup.import_aiohttp(); "
            "print(tls_startup._loading is not None); tls_startup.wait()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_a_broken_ca_file_is_ignored_as_openssl_ignores_it(tmp_path):
    """A plain import ignores a CA file OpenSSL cannot read (the contexts hold no CA from it); so
    does the deferred load: the sidecar still starts."""
    bad = tmp_path / "broken.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    env = {**os.environ, "SSL_CERT_FILE": str(bad), "SSL_CERT_DIR": str(tmp_path)}
    result = probe(env)
    assert result["deferred"] is True and result["env_after"] == str(bad)
    assert result["verified"] == result["unverified"] == result["plain"] == 0


def test_the_cli_defers_before_anything_imports_aiohttp():
    """``sidecar`` loads plugins (which import aiohttp) to build its commands: the deferred
    import must come first, or it does nothing."""
    code = ("import sys; from sidecar import tls_startup; seen = []; orig = tls_startup.import_aiohttp\n"
            "def spy(): seen.append('aiohttp' in sys.modules); orig()\n"
            "tls_startup.import_aiohttp = spy\n"
            "from sidecar.cli import main; main(['plugins', '--json']); print('imported before:', seen)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().endswith("imported before: [False]"), out.stdout[-300:]


def test_the_environment_is_restored_when_the_import_fails():
    """An aiohttp that cannot be imported leaves ``SSL_CERT_FILE`` as it found it."""
    code = ("import os, builtins; real = builtins.__import__\n"
            "def fail(name, *a, **k):\n"
            "    if name.startswith('aiohttp'): raise ImportError('no aiohttp here')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fail\n"
            "from sidecar import tls_startup\n"
            "try: tls_startup.import_aiohttp()\n"
            "except ImportError: print('raised', os.environ.get('SSL_CERT_FILE'))")
    env = {**os.environ, "SSL_CERT_FILE": ca_file()}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == f"raised {env['SSL_CERT_FILE']}"


def test_serve_waits_for_the_cas_before_it_listens(monkeypatch, tmp_path):
    """Nothing can open a TLS connection (the app's start-up, plugins', the first request)
    before aiohttp's contexts hold their CAs: ``serve`` waits before it runs the app."""
    import sidecar.serve
    from sidecar import tls_startup

    steps: list[str] = []
    monkeypatch.setenv("SIDECAR_DATABASE_URL", f"sqlite:///{tmp_path / 'sidecar.db'}")
    monkeypatch.setattr(tls_startup, "wait", lambda: steps.append("wait"))
    monkeypatch.setattr(sidecar.serve, "run", lambda app, loop, **kw: (steps.append("run"), loop.close()))
    monkeypatch.setattr(sidecar.serve, "tune_gc", lambda: None)
    monkeypatch.setattr(sidecar.serve, "raise_fd_limit", lambda: 0)
    assert sidecar.serve.serve("config/sidecar.yaml", "127.0.0.1", 0) == 0
    assert steps == ["wait", "run"]
