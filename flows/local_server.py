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

The server is kept between commands: it stays `OCR_PIPELINE_LOCAL_SERVER_KEEP` seconds (default
600) after the last command that used it has ended (`flows.kept_server`), and the next command of
the same Prefect home and server settings uses it instead of waiting for a start; `0` stops it
with each command, as Prefect's own temporary server does.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flows import kept_server
from ocr_core.errors import ConfigError, OcrPipelineError

KEEP_VARIABLE = "OCR_PIPELINE_LOCAL_SERVER_KEEP"
DEFAULT_KEEP_SECONDS = 600.0
_STARTED: list[LocalServer] = []


def _free_port() -> int:
    with socket.socket() as probe:  # a free port, chosen by the system
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_environment() -> dict[str, str]:
    """The process environment of a local server: no UI, the services of an ephemeral server."""
    return os.environ | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                         "PREFECT__SERVER_FINAL": "1"}


class LocalServer:
    """One temporary Prefect server process on 127.0.0.1, for this process and its children."""

    def __init__(self) -> None:
        import prefect

        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parents[1]),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=_server_environment(),
        )
        atexit.register(self.stop)  # before Prefect's own exit handlers: it stops after them

    def exit_code(self) -> int | None:
        """The server's exit code once it has exited, else None."""
        return self.process.poll()

    def _exited(self, code: int) -> str:
        return f"the temporary Prefect server exited with code {code} before it answered"

    def wait(self, timeout: float) -> None:
        """Block until the server answers its health check.

        Raises:
            OcrPipelineError: it exited, or did not answer within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                if (code := self.exit_code()) is not None:
                    raise OcrPipelineError(self._exited(code))
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


class KeptServer(LocalServer):
    """A local server kept between commands (`flows.kept_server`), started or found by this one.

    The folder `<PREFECT_HOME>/ocr-pipeline-server` holds its record (address, process, the
    settings it serves), one file per command using it, and the lock that orders commands
    attaching against the server deciding to stop.
    """

    def __init__(self, folder: Path, keep: float, identity: str, startup_timeout: float) -> None:
        from filelock import FileLock

        self.folder = folder
        (folder / kept_server.USERS).mkdir(parents=True, exist_ok=True)
        with FileLock(folder / kept_server.LOCK):
            record = self._usable_record(identity, startup_timeout)
            if record is None:
                record = self._start(keep, identity)
            self.pid, self.api_url = record["pid"], record["api_url"]
            self.started = record["started"] == os.getpid()
            self.user_file = folder / kept_server.USERS / str(os.getpid())
            self.user_file.touch()
        atexit.register(self.stop)

    def _usable_record(self, identity: str, startup_timeout: float) -> dict | None:
        """The record of a server of the same settings that answers or is still starting."""
        try:
            record = json.loads((self.folder / kept_server.RECORD).read_text())
        except (OSError, ValueError):
            return None
        if record.get("identity") != identity or not kept_server.running(record.get("pid", 0)):
            return None
        try:
            if httpx.get(f"{record['api_url']}/health", timeout=1).status_code == 200:
                return record
        except httpx.HTTPError:
            pass
        # Not answering: starting, or the record outlived its server (its number now another's).
        return record if time.time() - record.get("since", 0) < startup_timeout else None

    def _start(self, keep: float, identity: str) -> dict:
        port = _free_port()
        with open(self.folder / "server.log", "ab") as log:  # the server outlives this command
            process = subprocess.Popen(
                [sys.executable, "-m", "flows.kept_server", "--port", str(port),
                 "--folder", str(self.folder), "--keep", str(keep)],
                env=_server_environment(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)  # Ctrl-C in the terminal stops the command, not it
        record = {"pid": process.pid, "api_url": f"http://127.0.0.1:{port}/api",
                  "identity": identity, "started": os.getpid(), "since": time.time()}
        temporary = self.folder / f".{kept_server.RECORD}.{os.getpid()}"
        temporary.write_text(json.dumps(record))
        temporary.replace(self.folder / kept_server.RECORD)
        return record

    def exit_code(self) -> int | None:
        return None if kept_server.running(self.pid) else -1

    def _exited(self, code: int) -> str:
        return (f"the local Prefect server (process {self.pid}) stopped before it answered; "
                f"its log: {self.folder / 'server.log'}")

    def stop(self) -> None:
        """Leave the server to its other users, or to stop `keep` seconds after the last one."""
        self.user_file.unlink(missing_ok=True)


def keep_seconds() -> float:
    """How long a local server stays after its last command (`OCR_PIPELINE_LOCAL_SERVER_KEEP`)."""
    value = os.environ.get(KEEP_VARIABLE, "").strip()
    if not value:
        return DEFAULT_KEEP_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{KEEP_VARIABLE} must be a number of seconds >= 0 "
                          f"(0 stops the server with each command), got {value!r}")
    return seconds


def server_identity(settings) -> str:  # noqa: ANN001 - prefect.settings.Settings
    """What a server must share with a command to serve it: Prefect's version, this Python, and
    the server settings as Prefect resolves them (database, services, limits)."""
    import prefect

    text = json.dumps([prefect.__version__, sys.executable,
                       settings.server.model_dump(mode="json", context={"include_secrets": True})],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def start_local_server() -> LocalServer | None:
    """Start the local server now, or find the kept one, unless a server is configured or
    ephemeral mode is off; export its URL to this process's Prefect settings and to the
    processes it starts."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if _STARTED or settings.api.url or not settings.server.ephemeral.enabled:
        return None
    keep = keep_seconds()
    server = (KeptServer(Path(settings.home) / "ocr-pipeline-server", keep, server_identity(settings),
                         settings.server.ephemeral.startup_timeout_seconds)
              if keep > 0 else LocalServer())
    _STARTED.append(server)
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_UI_URL"] = ""  # it serves no UI: no "View at" links to it
    refresh_global_settings_context()
    return server


def local_server_answers() -> bool:
    """Whether the server `start_local_server` started or found answers now; True when it started
    none (a configured server is not waited for)."""
    for server in _STARTED:
        try:
            return httpx.get(f"{server.api_url}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False
    return True


def wait_for_local_server() -> None:
    """Block until the server `start_local_server` started answers (no-op when none was)."""
    from prefect.settings import get_current_settings

    for server in _STARTED:
        server.wait(get_current_settings().server.ephemeral.startup_timeout_seconds)
