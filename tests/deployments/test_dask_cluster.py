"""The sweep on an existing Dask cluster: a real Prefect server, a real `dask scheduler` and two
`dask worker` processes started as separate commands, then `ocr-pipeline sweep --dask-address`
and `ocr-pipeline predict-batch --dask-address` with the champion it promoted, from a folder of
the store into a results file in the store. (A local cluster, `--dask-workers 2`, is tested by
tests/flows/test_predict.py and test_generation.py.)

On the existing cluster the results root is a bucket of a real S3 API server and every process
has a scratch cache of its own: the workers share no path, only the store.

The server fixture (tests/deployments/test_server.py) starts every process in its own session
with a marker in its environment and fails the test if any marked process is left behind: the
scheduler, the workers and the CLI runs all carry it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ocr_core.registry import Registry
from ocr_core.storage import open_root
from tests.deployments.test_server import BIN, free_port, server  # noqa: F401 (fixture)

pytestmark = [pytest.mark.server, pytest.mark.slow]

SWEEP = ["--seeds", "1,2", "--learning-rates", "0.001,0.003", "--num-samples", "40",
         "--epochs", "1", "--batch-size", "8", "--evaluation-samples", "20",
         "--min-val-accuracy", "0"]


def sweep_run(url: str, results: str | Path):
    """The sweep flow run whose results root is `results`, its training task runs and artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        runs = [run for run in client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["captcha-sweep"])))
                if run.parameters["params"]["results_dir"] == str(results)]
        assert len(runs) == 1, runs
        (run,) = runs
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))}
    trainings = [t for t in tasks if t.name.startswith("train_model")]
    return run, trainings, artifacts


def predict_shards(url: str, output: str) -> list:
    """The read_shard task runs of the predict flow run that wrote `output`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        (run,) = [run for run in client.read_flow_runs(
                      flow_filter=FlowFilter(name=FlowFilterName(any_=["captcha-predict"])))
                  if run.parameters["params"]["output"] == output]
        assert run.state.name == "Completed"
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    return [t for t in tasks if t.name.startswith("read_shard")]


def check_sweep(url: str, results: str | Path, output: str) -> set[str]:
    """The four trainings completed, the table and the decision exist; returns the workers used."""
    run, trainings, artifacts = sweep_run(url, results)
    assert run.state.name == "Completed"
    assert sorted(t.state.name for t in trainings) == ["Completed"] * 4
    table = json.loads(artifacts["captcha-sweep"].data)
    assert len(table) == 4 and all(row["status"] in ("ok", "best") for row in table)
    assert "captcha-promotion" in artifacts
    (decision,) = Registry.of(results).decisions()
    assert decision["promoted"] and decision["challenger"] in {"v1", "v2", "v3", "v4"}
    assert f"{decision['challenger']} promoted to champion" in output
    return {row["worker"] for row in table}


def test_sweep_and_predict_on_an_existing_cluster(server, tmp_path, captcha_dir,  # noqa: F811
                                                  s3_root):
    from distributed import Client

    url, processes = server
    results = s3_root
    # What each worker needs: the server's URL (in the fixture's environment) and the store's
    # URL and credentials; each has its own scratch cache (no path in common).
    store = {name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                 "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3")}
    base = processes.env | store
    processes.env = base | {"OCR_PIPELINE_SCRATCH": str(tmp_path / "scratch-client")}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = processes.start("scheduler", str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                                "--port", str(port), "--no-dashboard")
    workers = []
    for name in ("a", "b"):
        processes.env = base | {"OCR_PIPELINE_SCRATCH": str(tmp_path / f"scratch-{name}")}
        workers.append(processes.start(f"worker-{name}", str(BIN / "dask"), "worker", address,
                                       "--name", f"worker-{name}", "--nworkers", "1",
                                       "--nthreads", "1", "--memory-limit", "3GiB",
                                       "--no-dashboard", "--preload", "flows.environment"))
    processes.env = base | {"OCR_PIPELINE_SCRATCH": str(tmp_path / "scratch-client")}
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=180)

    output = processes.run(str(BIN / "ocr-pipeline"), "sweep", "--dask-address", address,
                           "--results-dir", str(results), *SWEEP, timeout=900)
    used = check_sweep(url, results, output)
    # Work done on both workers: each trained at least one configuration, through its own scratch.
    assert {worker.split(" ")[0] for worker in used} == {"dask:worker-a", "dask:worker-b"}
    assert all(any((tmp_path / f"scratch-{name}" / "mirrors").iterdir()) for name in ("a", "b"))
    assert len(Registry.of(results).versions()) == 4  # every model, in the store's registry

    # The champion reads a folder of the store in 4 shards on the same cluster (each worker
    # copies its shards' images from the store), into one results file in the store.
    root = open_root(results)
    for path in sorted(captcha_dir.glob("*.png")):
        root.write_bytes(f"incoming/{path.name}", path.read_bytes())
    predictions = f"{results}/out/predictions.csv"
    processes.run(str(BIN / "ocr-pipeline"), "predict-batch", "--dask-address", address, "--output",
                  predictions, "--shard-size", "10", "--results-dir", results,
                  f"{results}/incoming", timeout=300)
    lines = root.read_bytes("out/predictions.csv").decode().splitlines()
    assert lines[0] == "path,text,confidence"
    assert [line.split(",")[0] for line in lines[1:]] == [
        f"{results}/incoming/{path.name}" for path in sorted(captcha_dir.glob("*.png"))]
    shards = predict_shards(url, predictions)
    assert sorted(t.state.name for t in shards) == ["Completed"] * 4

    for process in [*workers, scheduler]:  # the cluster goes; nothing of ours is left running
        processes.stop(process)
        assert process.poll() is not None
