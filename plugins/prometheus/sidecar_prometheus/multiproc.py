"""Several workers, one ``/metrics``: prometheus_client's multiprocess mode.

With ``--workers N`` the app is created once in the parent, which then forks the workers; each
worker writes its values to memory-mapped files in one directory (prometheus_client's
``PROMETHEUS_MULTIPROC_DIR``) and whichever worker answers ``/metrics`` reads them all, so the
answer is the whole sidecar's. The directory is chosen in the parent, before any value exists:
``$PROMETHEUS_MULTIPROC_DIR`` when set (LiteLLM's way; a previous run's files are removed from it
first), else a new private temporary directory, removed when the sidecar exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["ENV", "directory"]

ENV = "PROMETHEUS_MULTIPROC_DIR"


def directory(workers: int) -> str | None:
    """The directory of multiprocess mode, ready and set in the environment the workers inherit;
    None for one process (``$PROMETHEUS_MULTIPROC_DIR`` also turns it on for one, as for LiteLLM)."""
    given = os.environ.get(ENV)
    if workers <= 1 and not given:
        return None
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # a previous run's counts are not this run's
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="sidecar-prometheus-"))
        parent = os.getpid()
        atexit.register(lambda: os.getpid() == parent and shutil.rmtree(path, ignore_errors=True))
    os.environ[ENV] = str(path)
    # prometheus_client picks how values are kept when it is first imported; if something imported
    # it before the variable was set, pick again (values are only created in the workers).
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", True):
        values.ValueClass = values.get_value_class()
    return str(path)
