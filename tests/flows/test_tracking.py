"""Every training in MLflow when a team has a server: a real `mlflow server` on 127.0.0.1
(sqlite backend, local artifact root), started once for this module and stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ocr_core.config import CaptchaParams
from tests.ocr_core.training.test_tensorboard import events

pytestmark = [pytest.mark.slow, pytest.mark.server]
MLFLOW = Path(sys.executable).with_name("mlflow")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> str:
    """The URI of a fresh MLflow tracking server on loopback."""
    folder = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(folder / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", str(folder / "artifacts")],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=5).ok:
                    break
            except requests.RequestException:  # not listening yet, or still starting
                pass
            assert server.poll() is None, (folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
            time.sleep(1)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    assert server.poll() is not None


async def _artifacts(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a.data for a in found if a.key}


def test_a_flow_run_logs_its_training_as_an_mlflow_run_linked_from_prefect(
        prefect_server, results_dir, mlflow_server):
    from mlflow import MlflowClient

    from flows.captcha_ocr import captcha_ocr

    params = CaptchaParams(num_samples=40, epochs=2, patience=2, batch_size=8,
                           min_val_accuracy=0, results_dir=results_dir, mlflow=mlflow_server)
    state = captcha_ocr(params, return_state=True)
    assert state.is_completed(), state
    flow_run_id = state.state_details.flow_run_id
    bundle = Path(state.result().model_path)
    client = MlflowClient(tracking_uri=mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("ocr-pipeline").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == bundle.name
    assert run.data.tags["prefect.flow_run_id"] == str(flow_run_id)
    params = client.get_run(run.info.run_id).data.params
    assert params.get("recipe") == "crnn" and params.get("batch_size") == "8", (params, run.data.tags)
    history = client.get_metric_history(run.info.run_id, "val_character_error_rate")
    assert [m.step for m in history] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert {"bundle/model.keras", "bundle/bundle.json", "bundle/metrics.json"} <= artifacts
    assert "saved_model/saved_model.pb" in {
        a.path for a in client.list_artifacts(run.info.run_id, "saved_model")}
    link = f"{mlflow_server}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    published = asyncio.run(_artifacts(flow_run_id))
    assert f"({link})" in published["captcha-mlflow-run"]
    assert link in published["captcha-run"]
    board = Path(str(bundle) + ".tensorboard")
    assert f"({board.as_uri()})" in published["captcha-tensorboard"]
    assert [step for step, _ in events(board)["val_character_error_rate"]] == [1, 2]


def test_a_resumed_training_goes_on_in_the_same_mlflow_run(mlflow_server, tmp_path, captcha_dir):
    import keras
    import numpy as np
    from mlflow import MlflowClient

    from ocr_core.training.mlflow_run import RUN_FILE, MlflowRun
    from tests.ocr_core.training.callbacks import Interrupt

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    data = (np.ones((8, 2), "float32"), np.ones((8, 1), "float32"))
    work = tmp_path / "work"

    def fit(*callbacks):
        tracking = MlflowRun(mlflow_server, work, "resumed", {"lr": 0.01}, {"scenario": "resume"})
        model.fit(*data, epochs=3, verbose=0, callbacks=[
            tracking, keras.callbacks.BackupAndRestore(str(work / "checkpoint")), *callbacks])
        return tracking

    with pytest.raises(KeyboardInterrupt):
        fit(Interrupt(2))
    assert (work / RUN_FILE).is_file()
    tracking = fit()
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([tracking.experiment_id], "tags.scenario = 'resume'")
    assert [r.info.run_id for r in runs] == [tracking.run_id]
    assert [m.step for m in client.get_metric_history(tracking.run_id, "loss")] == [1, 2, 3]


def test_without_mlflow_the_flag_says_how_to_install_it(tmp_path):
    script = ("import sys; sys.modules['mlflow'] = None\n"
              "from flows.cli import main\n"
              "main(['captcha', '--mlflow', 'http://127.0.0.1:9', '--results-dir', sys.argv[1]])")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "results")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == ["Error: --mlflow: MLflow is not installed: pip install "
                      "'ocr-pipeline[mlflow]'"]
    assert not (tmp_path / "results").exists()
