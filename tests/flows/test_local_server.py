"""Prefect's temporary server, started early (flows/local_server.py): in a process of its own, since
starting it sets this process's Prefect settings."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, httpx
    from flows.local_server import local_server_answers, start_local_server, wait_for_local_server
    from prefect.settings import get_current_settings

    server = start_local_server()
    report = {"started": server is not None, "api_url": get_current_settings().api.url,
              "exported": os.environ.get("PREFECT_API_URL")}
    if server is not None:
        report["answers_at_once"] = local_server_answers()
        wait_for_local_server()
        report["answers_after_the_wait"] = local_server_answers()
        report["health"] = httpx.get(f"{server.api_url}/health").status_code
        report["again"] = start_local_server() is None  # one per process
        server.stop()
        report["stopped"] = server.process.poll() is not None
    print(json.dumps(report))
""")


def _run(env: dict[str, str]) -> dict:
    process = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return values | {"PREFECT_HOME": str(tmp_path / "prefect-home")}


def test_without_a_server_one_starts_and_every_prefect_client_uses_it(env):
    report = _run(env)
    assert report["started"] and report["health"] == 200
    assert report["api_url"] == report["exported"]
    assert report["api_url"].startswith("http://127.0.0.1:")
    assert report["again"] and report["stopped"]
    assert not report["answers_at_once"] and report["answers_after_the_wait"]  # when to load TF


def test_a_configured_server_is_used_as_it_is(env):
    report = _run(env | {"PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert report == {"started": False, "api_url": "http://127.0.0.1:9/api",
                      "exported": "http://127.0.0.1:9/api"}


def test_none_starts_where_ephemeral_mode_is_off(env):
    report = _run(env | {"PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"})
    assert report == {"started": False, "api_url": None, "exported": None}


def test_a_server_that_exits_before_answering_is_one_clear_error(env):
    code = textwrap.dedent("""
        from flows.local_server import start_local_server, wait_for_local_server
        from ocr_core.errors import OcrPipelineError

        server = start_local_server()
        server.process.kill()
        server.process.wait()
        try:
            wait_for_local_server()
        except OcrPipelineError as error:
            print(error)
    """)
    process = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip() == "the temporary Prefect server exited with code -9 before it answered"


KEPT = textwrap.dedent("""
    import json, sys, time
    from flows.local_server import start_local_server, wait_for_local_server

    server = start_local_server()
    wait_for_local_server()
    print(json.dumps({"api_url": server.api_url, "pid": server.pid, "started": server.started}),
          flush=True)
    time.sleep(float(sys.argv[1]))
""")


@pytest.fixture
def kept_env(tmp_path) -> dict[str, str]:
    """A ready Prefect home whose local server is kept 60 s; the test's server is stopped after."""
    from tests.prefect_homes import prefect_home

    home = prefect_home(tmp_path / "kept-home")
    yield {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(home), "OCR_PIPELINE_LOCAL_SERVER_KEEP": "60"}
    record = home / "ocr-pipeline-server" / "server.json"
    if record.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(json.loads(record.read_text())["pid"], signal.SIGTERM)


def _kept(env: dict[str, str], linger: float = 0) -> dict:
    process = subprocess.run([sys.executable, "-c", KEPT, str(linger)], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def _gone(pid: int, within: float) -> bool:
    from flows.kept_server import running

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.2)
    return False


def test_the_next_command_uses_the_kept_server_instead_of_starting_one(kept_env):
    first = _kept(kept_env)
    second = _kept(kept_env)
    assert first["started"] and not second["started"]
    assert second["api_url"] == first["api_url"] and second["pid"] == first["pid"]
    assert httpx.get(f"{first['api_url']}/health").status_code == 200  # both commands have ended


def test_two_commands_at_once_start_one_server_and_a_killed_one_is_replaced(kept_env):
    started = [subprocess.Popen([sys.executable, "-c", KEPT, "0"], cwd=PROJECT_ROOT,
                                env=kept_env, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    reports = [json.loads(process.communicate(timeout=300)[0].splitlines()[-1])
               for process in started]
    assert reports[0]["pid"] == reports[1]["pid"]
    assert sorted(report["started"] for report in reports) == [False, True]

    os.kill(reports[0]["pid"], signal.SIGKILL)  # the record now names a process that is gone
    assert _gone(reports[0]["pid"], within=30)
    after = _kept(kept_env)
    assert after["started"] and after["pid"] != reports[0]["pid"]


def test_the_kept_server_stops_after_its_last_command_even_a_killed_one(kept_env):
    env = kept_env | {"OCR_PIPELINE_LOCAL_SERVER_KEEP": "1"}
    user = subprocess.Popen([sys.executable, "-c", KEPT, "600"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        report = json.loads(user.stdout.readline())
        time.sleep(3)  # three times its keep: a command that runs holds it
        assert httpx.get(f"{report['api_url']}/health").status_code == 200
    finally:
        user.kill()  # no exit handler runs: its user file stays, naming a process that is gone
        user.wait()
    assert _gone(report["pid"], within=60)
    assert not (Path(env["PREFECT_HOME"]) / "ocr-pipeline-server" / "server.json").exists()


def test_the_keep_setting_is_checked_with_a_message_naming_it(monkeypatch):
    from flows.local_server import DEFAULT_KEEP_SECONDS, keep_seconds
    from ocr_core.errors import ConfigError

    monkeypatch.delenv("OCR_PIPELINE_LOCAL_SERVER_KEEP")
    assert keep_seconds() == DEFAULT_KEEP_SECONDS
    monkeypatch.setenv("OCR_PIPELINE_LOCAL_SERVER_KEEP", "0")
    assert keep_seconds() == 0
    for bad in ("ten", "-5", "inf", "nan"):
        monkeypatch.setenv("OCR_PIPELINE_LOCAL_SERVER_KEEP", bad)
        with pytest.raises(ConfigError, match=f"OCR_PIPELINE_LOCAL_SERVER_KEEP .* got '{bad}'"):
            keep_seconds()


def test_a_server_of_other_settings_is_not_shared():
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL, get_current_settings
    from prefect.settings.context import temporary_settings

    from flows.local_server import server_identity

    here = server_identity(get_current_settings())
    with temporary_settings({PREFECT_SERVER_DATABASE_CONNECTION_URL: "sqlite+aiosqlite:////tmp/x.db"}):
        other = server_identity(get_current_settings())
    assert here != other and here == server_identity(get_current_settings())
