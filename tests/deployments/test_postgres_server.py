"""`python -m deployments.postgres_server`: Prefect's server on PostgreSQL runs a real flow, keeps its
runs in PostgreSQL (not SQLite), and leaves nothing behind when stopped.

Installs Debian's postgresql package first where it is missing (root and apt-get needed; skipped
otherwise). Every process started carries a marker in its environment, so the test can check that
PostgreSQL, the Prefect server and their children are all gone at the end.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.deployments.test_server import MARKER, marked_processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 600  # apt-get install on a machine without PostgreSQL


def _postgres_available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"))


@pytest.fixture
def postgres_server(tmp_path):
    """The script started as a user would, on free ports, with a temporary cluster."""
    if not _postgres_available() and (os.geteuid() != 0 or not shutil.which("apt-get")):
        pytest.skip("PostgreSQL is not installed and cannot be installed here (needs root and apt-get)")
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
             "--info-file", str(info_file), "--install"],
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
    """Where the binaries come from, without touching the machine's packages."""

    @pytest.fixture
    def machine(self, monkeypatch):
        from deployments import postgres_cluster, postgres_server

        state = {"installed": False, "commands": [], "root": True}

        def fake_glob(pattern):
            return ["/usr/lib/postgresql/9/bin/initdb", "/usr/lib/postgresql/15/bin/initdb"] \
                if state["installed"] else []

        def fake_run(command, **kwargs):
            state["commands"].append(command)
            if command[:2] == ["apt-get", "install"]:
                state["installed"] = True
            return subprocess.CompletedProcess(command, 0, "", "")

        monkeypatch.setattr(postgres_cluster.glob, "glob", fake_glob)
        monkeypatch.setattr(postgres_cluster.shutil, "which",
                            lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
        monkeypatch.setattr(postgres_cluster.subprocess, "run", fake_run)
        monkeypatch.setattr(postgres_cluster.os, "geteuid", lambda: 0 if state["root"] else 1000)
        return postgres_server, state

    def test_installed_newest_version_is_used(self, machine):
        postgres_server, state = machine
        state["installed"] = True
        assert postgres_server.postgres_bindir(install=True) == Path("/usr/lib/postgresql/15/bin")
        assert state["commands"] == []

    def test_missing_package_is_installed_with_apt_get(self, machine):
        postgres_server, state = machine
        assert postgres_server.postgres_bindir(install=True) == Path("/usr/lib/postgresql/15/bin")
        assert state["commands"] == [["apt-get", "update"], [
            "apt-get", "install", "-y", "--no-install-recommends", "postgresql"]]

    def test_without_install_the_package_is_never_installed(self, machine):
        postgres_server, state = machine
        with pytest.raises(postgres_server.ServerError, match="give --install"):
            postgres_server.postgres_bindir(install=False)
        assert state["commands"] == []
        assert postgres_server.parse_args([]).install is False

    def test_missing_package_without_root_is_a_clear_error(self, machine):
        postgres_server, state = machine
        state["root"] = False
        with pytest.raises(postgres_server.ServerError, match="needs root and apt-get"):
            postgres_server.postgres_bindir(install=True)
        assert state["commands"] == []

    def test_ephemeral_never_removes_a_folder_with_files(self, tmp_path, capsys):
        from deployments.postgres_server import main

        (tmp_path / "keep.txt").write_text("mine")
        assert main(["--ephemeral", "--data-dir", str(tmp_path)]) == 2
        assert "--ephemeral needs a new or empty --data-dir" in capsys.readouterr().err
        assert (tmp_path / "keep.txt").read_text() == "mine"


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
