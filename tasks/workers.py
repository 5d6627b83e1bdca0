"""Which worker runs the current task: a Dask worker's name, or this host and process."""

from __future__ import annotations

import os
import socket
import threading


def current_worker() -> str:
    """`dask:<worker name> (<host>)` on a Dask worker, else `<host>:<pid>/<thread name>`."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not inside a Dask worker
        return f"{socket.gethostname()}:{os.getpid()}/{threading.current_thread().name}"
    return f"dask:{worker.name} ({worker.address})"
