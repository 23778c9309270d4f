"""The command line keeps the garbage collector off while it starts up, and turns it back on."""

from __future__ import annotations

import gc

import pytest

import sidecar.config
import sidecar.serve
from sidecar import cli


@pytest.fixture
def collecting():
    """The collector on before the test, and on with its thresholds after it, whatever the test did."""
    thresholds = gc.get_threshold()
    gc.enable()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.enable()


def test_serve_starts_up_without_collecting_and_serves_collecting(monkeypatch, tmp_path, collecting):
    seen: dict[str, bool] = {}
    load_config = sidecar.config.load_config

    def loading(path):
        seen["config"] = gc.isenabled()
        return load_config(path)

    def run(app, loop, **kw):
        seen["run"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count() > 0  # (else the first collection scans all of start-up)
        loop.close()

    monkeypatch.setenv("SIDECAR_DATABASE_URL", f"sqlite:///{tmp_path / 'sidecar.db'}")
    monkeypatch.setattr(sidecar.config, "load_config", loading)
    monkeypatch.setattr(sidecar.serve, "run", run)
    monkeypatch.setattr(sidecar.serve, "raise_fd_limit", lambda: 0)
    assert cli.main(["serve", "--config", "config/sidecar.yaml", "--port", "0"]) == 0
    assert seen == {"config": False, "run": True, "frozen": True}
    assert gc.isenabled()


def test_other_commands_run_collecting(capsys, collecting):
    assert cli.main(["plugins", "--json"]) == 0
    assert '"name": "mock"' in capsys.readouterr().out
    assert gc.isenabled()


def test_main_leaves_the_collector_off_when_it_found_it_off(capsys, collecting):
    gc.disable()
    assert cli.main(["plugins", "--json"]) == 0
    assert not gc.isenabled()


def test_a_failed_start_up_turns_the_collector_back_on(tmp_path, capsys, collecting):
    (tmp_path / "bad.yaml").write_text("model_list: 5\n")
    assert cli.main(["serve", "--config", str(tmp_path / "bad.yaml"), "--port", "0"]) == 2
    assert "model_list" in capsys.readouterr().err
    assert gc.isenabled()
