"""Prefect homes for the processes a test starts as other machines or servers, each with a
database that is ready to serve.

A new Prefect home makes its first server migrate a new SQLite database and register Prefect's
block types: about 8 s of CPU more than a start on a database that has that done (measured on
the project's 2-core machine: 15.5 s against 8 s). The test run builds one such database once,
shared by its xdist workers, and copies it into each new home, as a machine that has run Prefect
before has one. Tests of a first start keep empty homes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

FILES = ("prefect.db", "memo_store.toml")  # the database, and Prefect's note that its blocks are in
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED: list[Path] = []
"""The folder the test run's workers share (set by the session fixture in conftest.py)."""

_SCRIPT = """
from flows.local_server import start_local_server, wait_for_local_server
start_local_server()
wait_for_local_server()
"""


def _template() -> Path:
    """The ready home in the shared folder, built by the first worker that needs it."""
    home = SHARED[0] / "prefect-template"
    with FileLock(SHARED[0] / "prefect-template.lock"):
        if not (home / FILES[0]).exists():
            building = SHARED[0] / "prefect-template.building"
            shutil.rmtree(building, ignore_errors=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            env |= {"PREFECT_HOME": str(building), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}
            process = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, cwd=PROJECT_ROOT,
                                     capture_output=True, text=True, timeout=300)
            assert process.returncode == 0, process.stderr[-3000:]
            with contextlib.closing(sqlite3.connect(building / FILES[0])) as database:
                database.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in one file
            building.rename(home)
    return home


def prefect_home(path: Path) -> Path:
    """Make `path` a Prefect home whose default database is ready; return it."""
    template = _template()
    path.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(template / name, path / name)
    return path
