"""The ``sidecar`` command imports aiohttp with its CA loading moved to a thread.

aiohttp builds two TLS contexts when it is imported and loads the system's CA bundle into each:
about 0.1 s, a sixth of the sidecar's start-up, spent before anything else can happen. The
sidecar imports it with OpenSSL pointed at no CA file (``SSL_CERT_FILE``, for that import only),
then loads the same file into both contexts in a thread (OpenSSL's load lets the GIL go) while
the config is read and the app is built. :func:`wait` is called before the sidecar listens, forks
its workers or runs any plugin's start-up, so every TLS connection sees the contexts exactly as a
plain import would have made them (``sidecar``'s other commands wait before they run; plugins
are imported meanwhile, and must not open TLS connections at import). The CLI waits on every
exit too, so the process never ends inside OpenSSL's load. Everything else that imports aiohttp
(tests, other programs using the package) gets the plain import.
"""

from __future__ import annotations

import os
import sys
import threading

_loading: threading.Thread | None = None


def import_aiohttp() -> None:
    """Import aiohttp, its contexts' CA file loaded in a thread (a plain import when aiohttp is
    already imported or OpenSSL has no CA file to load)."""
    global _loading
    if "aiohttp" in sys.modules or _loading is not None:
        return
    import ssl

    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile  # (the file $SSL_CERT_FILE names, else OpenSSL's own; None if it is not there)
    if cafile is None:
        import aiohttp.connector  # noqa: F401
        return
    name = paths.openssl_cafile_env
    saved = os.environ.get(name)
    os.environ[name] = os.path.join(os.path.dirname(cafile), ".sidecar-no-ca-file")
    try:
        import aiohttp.connector
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved
    contexts = [ctx for ctx in vars(aiohttp.connector).values() if isinstance(ctx, ssl.SSLContext)]
    if not contexts:  # (an aiohttp that builds none at import: nothing was left without CAs)
        return
    _loading = threading.Thread(target=_load, args=(contexts, cafile), name="sidecar-ca-load", daemon=True)
    _loading.start()


def _load(contexts: list, cafile: str) -> None:
    import ssl

    for ctx in contexts:
        try:
            ctx.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError):  # (as OpenSSL's own loading of the default file: ignored)
            pass


def wait() -> None:
    """Return once the CA file is in aiohttp's contexts (at once when nothing was deferred)."""
    global _loading
    if _loading is not None:
        _loading.join()
        _loading = None
