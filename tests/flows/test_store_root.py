"""The main job with its results on an S3 API server: nothing local but the scratch cache, and
another machine (folder, HOME, scratch) served from the store alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocr_core.storage import open_root
from tests.prefect_homes import prefect_home

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SMALL = ["--num-samples", "40", "--epochs", "1", "--batch-size", "8", "--min-val-accuracy", "0"]


def machine(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of another machine: its own working folder, HOME, Prefect (a database
    ready, as after any earlier use; its local server kept 30 s between commands) and scratch."""
    home = tmp_path / name
    (home / "work").mkdir(parents=True)
    prefect_home(home / ".prefect")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OCR_PIPELINE_"))}
    return env | {"HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "OCR_PIPELINE_LOCAL_SERVER_KEEP": "30",
                  "OCR_PIPELINE_SCRATCH": str(home / "scratch"), "PYTHONPATH": str(PROJECT_ROOT)}


def cli(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    process = subprocess.run([sys.executable, "-m", "flows.cli", *args], env=env,
                             cwd=Path(env["HOME"]) / "work", capture_output=True, text=True,
                             timeout=timeout)
    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    return process.stdout + process.stderr


def finished(output: str) -> dict[str, str]:
    """Each task's final state by task name, from a flow run's log."""
    states = {}
    for line in output.splitlines():
        if "Task run '" in line and "Finished in state" in line:
            name = line.split("Task run '")[1].split("'")[0].rsplit("-", 1)[0]
            states[name] = line.split("Finished in state ")[1].split("(")[0]
    return states


def test_the_main_job_on_a_store_and_from_another_machine(s3_root, tmp_path, captcha_dir):
    alice = machine(tmp_path, "alice")
    first = cli(alice, "captcha", *SMALL, "--results-dir", s3_root)
    assert "training crnn (" in first
    model = next(line.split()[-1] for line in first.splitlines() if line.startswith("model:"))
    assert model.startswith(f"{s3_root}/models/crnn-")
    assert os.listdir(Path(alice["HOME"]) / "work") == []  # nothing in the working folder

    root = open_root(s3_root)
    records = root.listdir("prefect-results")
    assert records
    for name in records:  # JSON, written by the record serializer: nothing to unpickle
        record = json.loads(root.read_bytes(f"prefect-results/{name}"))
        assert record["metadata"]["serializer"] == {"type": "ocr-record"}
        assert "record" in json.loads(record["result"])

    bob = machine(tmp_path, "bob")  # shares nothing with alice but the bucket
    again = cli(bob, "captcha", *SMALL, "--results-dir", s3_root)
    states = finished(again)
    cached = {"collect_captchas", "validate_images", "split_dataset", "build_datasets",
              "plot_samples", "train_model", "evaluate_model", "plot_history", "plot_predictions"}
    assert {name: states[name] for name in cached} == dict.fromkeys(cached, "Cached"), states
    assert "training crnn (" not in again and "rendering" not in again

    key = model.removeprefix(s3_root + "/") + "/model.keras"
    root.write_bytes(key, root.read_bytes(key)[:100])  # truncated in the store
    repaired = cli(bob, "captcha", *SMALL, "--results-dir", s3_root)
    assert "training crnn (" in repaired and finished(repaired)["validate_images"] == "Cached"
    assert len(root.read_bytes(key)) > 100

    images = sorted(captcha_dir.glob("*.png"))[:5]
    for path in images:
        root.write_bytes(f"incoming/{path.name}", path.read_bytes())
    lines = cli(bob, "predict", "--model", model, f"{s3_root}/incoming").splitlines()
    assert len([line for line in lines if "\t" in line]) == 5
    report = cli(bob, "evaluate", "--model", model, "--json", f"{s3_root}/incoming")
    assert json.loads(report[report.index("{"):])["count"] == 5


def test_the_same_command_twice_at_once_generates_and_trains_once(s3_root, tmp_path):
    command = [sys.executable, "-m", "flows.cli", "captcha", *SMALL, "--results-dir", s3_root]
    runs = []
    for person in ("carol", "dave"):  # two machines: own folders and scratch, one bucket
        env = machine(tmp_path, person)
        runs.append(subprocess.Popen(command, cwd=Path(env["HOME"]) / "work", env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    assert sum(output.count("rendering ") for output in outputs) == 1, outputs
    assert sum(output.count("training crnn (") for output in outputs) == 1, outputs
    models = {line.split()[-1] for output in outputs for line in output.splitlines()
              if line.startswith("model:")}
    assert len(models) == 1
    bundles = [n for n in open_root(s3_root).listdir("models") if not n.endswith(".tensorboard")]
    assert len(bundles) == 1
