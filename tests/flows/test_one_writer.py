"""Two identical commands at once on one results root: one computes each step, both succeed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prefect_homes import prefect_home

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_two_identical_commands_at_once_train_one_model(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "flows.cli", "captcha", "--num-samples", "40", "--epochs",
               "2", "--batch-size", "8", "--min-val-accuracy", "0", "--results-dir", str(results)]
    runs = []
    for person in ("alice", "bob"):  # two people: their own Prefect home, one results root
        env = os.environ | {"PREFECT_HOME": str(prefect_home(tmp_path / person))}
        env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
        runs.append(subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    assert sum(output.count("training crnn (") for output in outputs) == 1, outputs  # one training
    models = {line.split()[-1] for output in outputs for line in output.splitlines()
              if line.startswith("model:")}
    assert len(models) == 1 and (Path(models.pop()) / "model.keras").is_file()
    bundles = [p for p in (results / "models").iterdir() if not p.name.endswith(".tensorboard")]
    assert len(bundles) == 1  # no second copy, nothing left aside
