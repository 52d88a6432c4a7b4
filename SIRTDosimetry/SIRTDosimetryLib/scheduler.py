"""A quick reachability check of a Dask scheduler address, before any work or folder is made.

``distributed.Client`` waits 30 s by default for an unreachable scheduler and fails with a
traceback; a command that checks first fails within seconds with one clear line and leaves no
half-made output folder behind.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from .errors import SIRTInputError

CONNECT_TIMEOUT_S = 5.0
NETWORK_SCHEMES = ("tcp", "tls", "ws", "wss")


def check_scheduler_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse (``SIRTInputError``) a ``tcp://host:port`` address that does not accept a connection within ``timeout_s``.

    Other schemes (e.g. ``inproc://``) are left to Dask.
    """
    text = address if "://" in address else f"tcp://{address}"
    parts = urlsplit(text)
    if parts.scheme not in NETWORK_SCHEMES:
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise SIRTInputError(f"Dask scheduler address {address!r} must look like tcp://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SIRTInputError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s: {reason}") from None
