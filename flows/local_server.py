"""Prefect's temporary local server, started as soon as a command starts instead of at its first
flow run.

Without `PREFECT_API_URL` Prefect starts a temporary server (its "ephemeral" mode) when the first
flow run needs it: the process first imports the server's code (about 3 s) and then waits for the
server process to answer (4-14 s; a new database is migrated first), with nothing else happening.
Here the same server process (Prefect's own command line: `uvicorn` on Prefect's app factory, the
UI off, the services of an ephemeral server) starts before the command loads TensorFlow and its
flows, so the two overlap, and this process never imports the server's code. Its URL is exported
as `PREFECT_API_URL`, so the flows, Prefect's caching and artifacts, and any worker process this
command starts use it; it stops when the command exits. A configured server (`PREFECT_API_URL`,
a profile, a test harness) is used as it is, and so is `PREFECT_SERVER_ALLOW_EPHEMERAL_MODE=false`.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ocr_core.errors import OcrPipelineError

_STARTED: list[LocalServer] = []


class LocalServer:
    """One temporary Prefect server process on 127.0.0.1, for this process and its children."""

    def __init__(self) -> None:
        import prefect

        with socket.socket() as probe:  # a free port, chosen by the system
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parents[1]),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=os.environ | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                              "PREFECT__SERVER_FINAL": "1"},
        )
        atexit.register(self.stop)  # before Prefect's own exit handlers: it stops after them

    def wait(self, timeout: float) -> None:
        """Block until the server answers its health check.

        Raises:
            OcrPipelineError: it exited, or did not answer within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise OcrPipelineError(f"the temporary Prefect server exited with code "
                                           f"{self.process.returncode} before it answered")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise OcrPipelineError(
                        f"the temporary Prefect server did not answer within {timeout:.0f} s "
                        "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS raises the limit)")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (Prefect's temporary server stops the same way)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_local_server() -> LocalServer | None:
    """Start the temporary server now, unless a server is configured or ephemeral mode is off;
    export its URL to this process's Prefect settings and to the processes it starts."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if _STARTED or settings.api.url or not settings.server.ephemeral.enabled:
        return None
    server = LocalServer()
    _STARTED.append(server)
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_UI_URL"] = ""  # it serves no UI: no "View at" links to it
    refresh_global_settings_context()
    return server


def wait_for_local_server() -> None:
    """Block until the server `start_local_server` started answers (no-op when none was)."""
    from prefect.settings import get_current_settings

    for server in _STARTED:
        server.wait(get_current_settings().server.ephemeral.startup_timeout_seconds)
