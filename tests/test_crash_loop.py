"""`--workers N` survives workers that die, even just after starting, and stops only on a crash
loop, saying why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from conftest import MOCK_MODELS
from gateway_helpers import Server, write_config
from test_workers import workers_of


def wait_for(predicate, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def start_time(pid: int) -> float:
    """Seconds since boot at which ``pid`` started (field 22 of /proc/PID/stat)."""
    stat = open(f"/proc/{pid}/stat").read()
    return int(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")


def uptime() -> float:
    return float(open("/proc/uptime").read().split()[0])


def test_a_worker_killed_twice_just_after_starting_leaves_the_sidecar_serving(tmp_path):
    cfg = write_config(tmp_path / "w.yaml", {"model_list": MOCK_MODELS,
                                            "general_settings": {"database_url": f"sqlite:///{tmp_path}/w.db"}})
    with Server(cfg, tmp_path, extra_args=("--workers", "2")) as server:
        server.wait_ready()
        known = set(wait_for(lambda: len(w := workers_of(server)) == 2 and w, what="two workers"))
        victim = next(iter(known))
        for _ in range(3):  # the first kill, then each replacement within a second of its start
            os.kill(victim, signal.SIGKILL)  # (it stays a child, a zombie, until reaped)
            victim = wait_for(lambda: next((p for p in workers_of(server) if p not in known), None),
                              what="a replacement worker")
            known.add(victim)
            assert uptime() - start_time(victim) < 1.0
        os.kill(victim, signal.SIGKILL)  # (now killed twice within a second of starting)
        wait_for(lambda: len(w := set(workers_of(server)) - known) == 1 and w, what="serving again")
        assert server.proc.poll() is None
        for _ in range(6):
            with urllib.request.urlopen(server.url + "/health/liveliness", timeout=10) as resp:
                assert resp.status == 200
        assert server.output().count("starting another in") == 4
        assert "starting another in 0.5 s" in server.output() and "starting another in 2 s" in server.output()


CRASH_LOOP = """
import logging, sys, time
from sidecar import workers
logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
workers.BACKOFF_FIRST_SECONDS = 0.01
slots = workers.bind("127.0.0.1", 0, 2)
started = time.monotonic()
code = workers.supervise(slots, lambda socks: 3)  # a worker that dies at once, every time
print(code, round(time.monotonic() - started, 2))
"""


def test_a_crash_loop_stops_the_server_and_says_why():
    out = subprocess.run([sys.executable, "-c", CRASH_LOOP], capture_output=True, text=True, timeout=60)
    code, seconds = out.stdout.split()
    assert code == "3", out.stderr
    assert out.stderr.count("starting another in") == 4, out.stderr
    assert "5 workers died within 60 s, a crash loop: stopping the server" in out.stderr
    assert float(seconds) < 30


LONG_RUNNING = """
import logging, sys, time
from sidecar import workers
logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
workers.BACKOFF_FIRST_SECONDS = 0.01
workers.FAST_FAILURE_SECONDS = 0.2  # (10 s in a real sidecar)
workers.HEALTHY_SECONDS = 0.25  # (60 s: a worker that ran this long resets its back-off)
slots = workers.bind("127.0.0.1", 0, 2)
print(workers.supervise(slots, lambda socks: time.sleep(0.3) or 3), flush=True)  # dies, but after serving a while
"""


def test_workers_dying_after_running_a_while_are_replaced_and_never_stop_the_sidecar(tmp_path):
    """Only fast failures make a crash loop: 12 deaths, each past FAST_FAILURE_SECONDS and
    HEALTHY_SECONDS after its worker's start, are each replaced after the first back-off (reset),
    and the sidecar serves on until told to stop."""
    err_path = tmp_path / "supervise.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", LONG_RUNNING], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        wait_for(lambda: err_path.read_text().count("starting another in") >= 12, 15, "12 replaced workers")
        assert proc.poll() is None, err_path.read_text()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = err_path.read_text()
    assert out.split() == ["0"], log
    assert "crash loop" not in log and "ERROR" not in log, log
    replaced = [line for line in log.splitlines() if "starting another in" in line]
    assert all(line.endswith("starting another in 0.01 s") for line in replaced), log  # (never doubled)
