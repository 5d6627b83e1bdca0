"""Prefect's temporary server, started early (flows/local_server.py): in a process of its own, since
starting it sets this process's Prefect settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, httpx
    from flows.local_server import start_local_server, wait_for_local_server
    from prefect.settings import get_current_settings

    server = start_local_server()
    report = {"started": server is not None, "api_url": get_current_settings().api.url,
              "exported": os.environ.get("PREFECT_API_URL")}
    if server is not None:
        wait_for_local_server()
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
