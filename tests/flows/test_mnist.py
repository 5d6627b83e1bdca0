import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from flows.cli import main
from ocr_core.config import MnistParams
from tests.flows.task_runs import final_task_runs
from tests.mnist_files import write_idx_copy

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _artifact_rows(flow_run_id, key):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data


def _training_runs(flow_run_id):
    return [run for run in final_task_runs(flow_run_id) if run.name.startswith("train_digit_model")]


def _training_intervals(flow_run_id):
    return sorted((run.start_time, run.end_time) for run in _training_runs(flow_run_id))


def _training_states(flow_run_id):
    return sorted(run.state.name for run in _training_runs(flow_run_id))


@pytest.mark.slow
def test_flow_trains_compares_and_caches(prefect_server, results_dir, mnist_dir):
    from flows.mnist import mnist

    params = MnistParams(source="local", mnist_path=mnist_dir, epochs=1, max_workers=1,
                         min_val_accuracy=0, results_dir=results_dir)
    state = mnist(params, return_state=True)
    summary = state.result()

    assert [row["model"] for row in summary.rows] == ["dense", "simple_cnn", "larger_cnn"]
    for row in summary.rows:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["error %"] == pytest.approx(100 * (1 - row["accuracy"]), abs=0.01)
        assert row["epochs"] == "1 best / 1 run"
    assert [row["parameters"] for row in summary.rows] == [101_770, 592_074, 59_933]
    assert all((Path(path) / "model.keras").is_file() for path in summary.models.values())
    assert all(Path(path).is_file() and Path(path).is_relative_to(results_dir)
               for path in summary.plots.values())
    assert set(summary.plots) == {"digits", *(f"{m} {kind}" for m in summary.models
                                             for kind in ("confusion", "misclassified"))}
    flow_run_id = state.state_details.flow_run_id
    assert _artifact_rows(flow_run_id, "mnist-comparison") == summary.rows
    # max_workers=1: no two trainings overlap.
    intervals = _training_intervals(flow_run_id)
    assert len(intervals) == 3
    assert all(end <= next_start
               for (_, end), (next_start, _) in itertools.pairwise(intervals))

    shutil.rmtree(results_dir / "data")  # the data step runs again, the trainings are reused
    again_state = mnist(params, return_state=True)
    again = again_state.result()  # the recorded training times come back unchanged
    assert again.rows == summary.rows and again.models == summary.models
    assert (results_dir / "data").is_dir()
    assert _training_states(again_state.state_details.flow_run_id) == ["Cached"] * 3

    shutil.rmtree(summary.models["dense"])  # a cache hit whose files are gone is a miss
    rebuilt_state = mnist(params, return_state=True)
    rebuilt = rebuilt_state.result()
    assert (Path(rebuilt.models["dense"]) / "model.keras").is_file()
    assert rebuilt.rows[1:] == summary.rows[1:]
    assert _training_states(rebuilt_state.state_details.flow_run_id) == ["Cached", "Cached",
                                                                        "Completed"]


@pytest.mark.slow
def test_a_model_that_learned_nothing_fails_the_run(prefect_server, results_dir, mnist_arrays,
                                                    tmp_path):
    x_train, y_train, x_test, y_test = mnist_arrays
    shuffled = np.random.default_rng(0).permutation(y_train)  # labels unrelated to the images
    folder = tmp_path / "shuffled"
    write_idx_copy(folder, [x_train, shuffled, x_test, y_test])
    result = CliRunner().invoke(main, [
        "mnist", "--source", "local", "--mnist-path", str(folder), "--models", "dense",
        "--epochs", "1", "--results-dir", str(results_dir)])
    assert result.exit_code == 6, result.output
    last = result.output.strip().splitlines()[-1]
    assert re.match(r"Error: the model did not learn: best validation accuracy of dense "
                    r"[0-9.]+% is below min_val_accuracy 50\.0% \(model kept for inspection at ",
                    last), last
    assert "Traceback" not in result.output
    assert not list((results_dir / "evaluations").glob("mnist-*"))  # never evaluated


@pytest.mark.slow
def test_cli_trains_two_models_side_by_side(prefect_server, results_dir, mnist_dir):
    result = CliRunner().invoke(main, [
        "mnist", "--source", "local", "--mnist-path", str(mnist_dir), "--models",
        "larger_cnn,dense", "--epochs", "1", "--min-val-accuracy", "0",
        "--results-dir", str(results_dir)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[header].split() == ["model", "parameters", "epochs", "accuracy", "error", "%",
                                     "train", "seconds"]
    assert [lines[header + 1].split()[0], lines[header + 2].split()[0]] == ["larger_cnn", "dense"]
    assert "plot (dense confusion):" in result.output


def test_cli_offline_fails_in_seconds_and_says_what_to_do(tmp_path, closed_port):
    env = dict(os.environ, OCR_PIPELINE_RESULTS=str(tmp_path / "results"))
    start = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "flows.cli", "mnist", "--download-host", "127.0.0.1",
         "--download-port", str(closed_port)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert process.returncode == 3, process.stderr
    assert elapsed < 10
    assert process.stderr.startswith("Error: MNIST source 'tfds' downloads from 127.0.0.1:")
    assert "--source local --mnist-path DIR" in process.stderr
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "results").exists()


def test_cli_reports_an_incomplete_local_copy(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    result = CliRunner().invoke(main, ["mnist", "--source", "local", "--mnist-path", str(tmp_path),
                                       "--results-dir", str(tmp_path / "results")])
    assert result.exit_code == 3
    assert "missing IDX files train-labels-idx1-ubyte, t10k-images-idx3-ubyte" in result.output
