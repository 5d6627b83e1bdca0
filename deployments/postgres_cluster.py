"""PostgreSQL for the Prefect server script: find (or, asked to, install) Debian's package, make a
cluster on loopback with a password-protected role and database, start and stop it."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deployments.secret_files import write_secret

DATABASE = "prefect"
ROLE = "prefect"
START_TIMEOUT = 180.0


class ServerError(RuntimeError):
    """Something the operator must fix; printed as one line."""


def log(message: str) -> None:
    print(f"[postgres-server] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bindir(install: bool) -> Path:
    """The folder with initdb and postgres; installs Debian's package when missing (as root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).resolve().parent
    if not install:
        raise ServerError("PostgreSQL is not installed (no initdb found): install Debian's "
                          "postgresql package, or give --install to let this script run apt-get")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServerError("PostgreSQL is not installed and cannot be installed here (needs root and "
                          "apt-get): install Debian's postgresql package, then run this again")
    log("installing PostgreSQL: apt-get update && apt-get install -y postgresql")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends",
                                            "postgresql"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerError(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")
    return postgres_bindir(install=False)


@dataclass
class Cluster:
    """A PostgreSQL cluster in `data_dir`, run as `user` when we are root."""

    bindir: Path
    data_dir: Path
    port: int
    user: str | None  # None: run as ourselves (not root)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "socket"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "prefect.password"

    def _run(self, *args: str, input_text: str | None = None) -> str:
        result = subprocess.run(args, user=self.user, capture_output=True, text=True,
                                input=input_text, cwd=self.data_dir)
        if result.returncode != 0:
            raise ServerError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def prepare(self) -> str:
        """Create the folder and cluster on first use; returns the prefect role's password."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.user is not None:
            shutil.chown(self.data_dir, self.user, self.user)
            shutil.chown(self.socket_dir, self.user, self.user)
            probe = subprocess.run(["test", "-w", str(self.data_dir)], user=self.user)
            if probe.returncode != 0:
                raise ServerError(f"the {self.user} user cannot write {self.data_dir} (a parent "
                                  "folder is closed to it): choose a --data-dir it can reach")
        if not (self.pgdata / "PG_VERSION").exists():
            password = secrets.token_urlsafe(24)
            log(f"creating a PostgreSQL cluster in {self.pgdata}")
            self._run(str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                      "--auth-local=peer" if self.user else "--auth-local=trust",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
            self.start()
            self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
            self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
            write_secret(self.password_file, password)
            return password
        if not self.password_file.is_file():
            raise ServerError(f"{self.pgdata} exists but {self.password_file} is missing")
        return self.password_file.read_text().strip()

    def start(self) -> None:
        if self.process is not None:
            return
        log(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}"],
            user=self.user, cwd=self.data_dir, stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "postgres.log", "a"), start_new_session=True)  # noqa: SIM115
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"PostgreSQL exited: {tail(self.data_dir / 'postgres.log')}")
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", str(self.socket_dir),
                                    "-p", str(self.port)])
            if ready.returncode == 0:
                return
            time.sleep(0.3)
        raise ServerError(f"PostgreSQL not ready after {START_TIMEOUT:.0f} s")

    def psql(self, sql: str) -> str:
        return self._run(str(self.bindir / "psql"), "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                         "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-qAt", "-c", sql)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, then exit cleanly)."""
        if self.process is not None and self.process.poll() is None:
            log("stopping PostgreSQL")
            stop_group(self.process, signal.SIGINT, grace=30)
        self.process = None


def tail(path: Path, chars: int = 1500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def stop_group(process: subprocess.Popen, first: signal.Signals, grace: float) -> None:
    """`first` to the process's group, SIGKILL if it lingers."""
    for sig, wait in ((first, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


