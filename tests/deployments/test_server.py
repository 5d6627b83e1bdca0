"""A real Prefect server on 127.0.0.1: serve the flows, run retrain twice at once through the API,
then deploy prefect.yaml to the same server.

Every process the test starts gets its own session (process group) and carries a marker in its
environment; teardown stops the groups and checks that no marked process is left, even when an
assertion failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deployments.postgres_cluster import stop_group
from ocr_core.registry import Registry
from tests.prefect_homes import prefect_home

pytestmark = [pytest.mark.server, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MARKER = "OCR_PIPELINE_TEST_PROCESS"
RUN_TIMEOUT = 480


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def marked_processes(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"{MARKER}={marker}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours
                continue
    return found


@dataclass
class Processes:
    """Processes started by the test, each in its own session, stopped newest first."""

    env: dict[str, str]
    logs: Path
    started: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, cwd=PROJECT_ROOT, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started.append(process)
        return process

    def run(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(args, cwd=PROJECT_ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the process's group, SIGKILL if it lingers."""
        stop_group(process, signal.SIGTERM, grace=15)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            self.stop(process)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""


@pytest.fixture
def server(tmp_path):
    """`prefect server start` on a free loopback port with its own PREFECT_HOME and SQLite."""
    with running_server(tmp_path) as started:
        yield started


@contextlib.contextmanager
def running_server(tmp_path: Path, settings: dict[str, str] | None = None):
    """A server as the `server` fixture starts it; `settings` join the environment of the server
    and of every process started through the returned `Processes` (e.g. its auth string)."""
    marker = uuid.uuid4().hex
    home = prefect_home(tmp_path / "prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "OCR_PIPELINE_"))}
    env |= {
        MARKER: marker,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    } | (settings or {})
    processes = Processes(env, tmp_path)
    try:
        server_process = processes.start("server", str(BIN / "prefect"), "server", "start",
                                         "--host", "127.0.0.1", "--port", str(port), "--no-ui")
        wait_for_health(url, server_process, processes)
        assert server_process.pid in marked_processes(marker)  # the leftover check can see it
        yield url, processes
    finally:
        processes.stop_all()
        deadline = time.monotonic() + 10
        while marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marked_processes(marker) == [], "processes left behind"


def wait_for_health(url: str, process: subprocess.Popen, processes: Processes,
                    timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited:\n{processes.log('server')}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if json.loads(response.read()) is True:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no /api/health after {timeout} s:\n{processes.log('server')}")


def served_retrain(client, serve: subprocess.Popen, processes):
    """The retrain deployment once `serve` has it ready; fails with serve's log if it exits."""

    def served():
        assert serve.poll() is None, f"serve exited:\n{processes.log('serve')}"
        try:
            deployment = client.read_deployment_by_name("captcha-retrain/retrain")
        except Exception:  # not there yet
            return None
        return deployment if deployment.status and deployment.status.value == "READY" else None

    return wait_until(served, 180, lambda: f"not served:\n{processes.log('serve')}")


def wait_until(condition, timeout: float, message: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := condition()) is not None:
            return value
        time.sleep(poll)
    pytest.fail(message())


def test_served_retrain_runs_from_the_api_and_prefect_yaml_deploys(server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, processes = server
    results = tmp_path / "results"
    serve = processes.start(
        "serve", sys.executable, "-m", "deployments.serve", "--results-dir", str(results),
        "--num-samples", "40", "--epochs", "1", "--evaluation-samples", "20",
        "--promotion-margin", "0", "--min-val-accuracy", "0", "--limit", "2")

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:

        deployment = served_retrain(client, serve, processes)
        assert deployment.schedules[0].schedule.cron == "0 3 * * 1"
        assert deployment.parameters["params"]["results_dir"] == str(results)

        # Two retrain runs at once: two flow-run processes share one registry and cache.
        runs = [run_deployment("captcha-retrain/retrain", timeout=0) for _ in range(2)]

        def finished():
            states = [client.read_flow_run(run.id).state for run in runs]
            return states if all(state.is_final() for state in states) else None

        states = wait_until(finished, RUN_TIMEOUT, lambda: f"runs unfinished:\n"
                            f"{processes.log('serve')}", poll=2)
        assert [state.name for state in states] == ["Completed"] * 2, (
            [state.message for state in states], processes.log("serve"))
        first_run, second_run = (client.read_flow_run(run.id) for run in runs)
        assert first_run.start_time < second_run.end_time
        assert second_run.start_time < first_run.end_time  # they overlapped

        for run in runs:
            artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))}
            assert {"captcha-metrics", "captcha-predictions", "captcha-promotion",
                    "captcha-samples-plot", "captcha-history-plot",
                    "captcha-predictions-plot"} <= set(artifacts)
            assert "| challenger |" in artifacts["captcha-promotion"].data

    registry = Registry.of(results)
    versions = registry.versions()
    assert [v.name for v in versions] == ["v1", "v2"]  # each run drew its own seed
    assert len({v.info["training_data"]["seed"] for v in versions}) == 2
    first, second = registry.decisions()
    assert first["promoted"] and first["champion_before"] is None
    # The lock serialised the decisions: the second compared with the first's outcome.
    assert second["champion_before"] == first["champion_after"] == first["challenger"]
    assert second["champion_scores"] is not None
    assert registry.champion().name == second["champion_after"]

    # prefect.yaml deploys to the same server as the process work pool it declares.
    processes.stop(serve)
    processes.run(str(BIN / "prefect"), "work-pool", "create", "ocr-pipeline", "--type", "process")
    processes.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
                  "deployments/prefect.yaml")
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        retrain = client.read_deployment_by_name("captcha-retrain/retrain")
        captcha = client.read_deployment_by_name("captcha-ocr/captcha")
    assert retrain.work_pool_name == captcha.work_pool_name == "ocr-pipeline"
    assert retrain.entrypoint == "flows/retrain.py:captcha_retrain"
    assert retrain.parameters == {"params": {"reseed_each_run": True}}
    assert "RetrainParams" in retrain.parameter_openapi_schema["definitions"]
    assert retrain.enforce_parameter_schema
    assert [s.schedule.cron for s in retrain.schedules] == ["0 3 * * 1"]
    assert retrain.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
        "directory": str(PROJECT_ROOT)}}]


def test_a_served_run_past_its_time_budget_is_cancelled_and_leaves_no_output(server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, processes = server
    results = tmp_path / "results"
    serve = processes.start(
        "serve", sys.executable, "-m", "deployments.serve", "--results-dir", str(results),
        "--no-schedule", "--max-run-minutes", "0.25")
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        served_retrain(client, serve, processes)
        # 20,000 captchas and 250 epochs: far more than 15 s of work.
        run = run_deployment("captcha-ocr/captcha", timeout=0,
                             parameters={"params": {"num_samples": 20_000, "epochs": 250}})
        final = wait_until(lambda: s if (s := client.read_flow_run(run.id).state).is_final()
                           else None, 180, lambda: processes.log("serve"), poll=1)
        run = client.read_flow_run(run.id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert final.name == "Cancelled", (final, processes.log("serve"))
    # Stopped: SIGTERM to the run's process group, SIGKILL 30 s later if it lingers.
    assert 15 <= (run.end_time - run.start_time).total_seconds() < 90
    assert any("exceeded the served time budget of 0.25 minutes" in log.message
               and "--max-run-minutes" in log.message for log in logs), [r.message for r in logs]
    # No output: only the scratch folder of the step it was in (never read) and Prefect's records.
    outputs = [p for p in results.rglob("*") if p.is_file()
               and not {"prefect-results", "locks"} & set(p.parts)  # records and lock files
               and not any(part.startswith(".tmp-") for part in p.parts)]
    assert outputs == []
