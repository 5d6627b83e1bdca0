"""A training of either model kind killed with SIGKILL between two epochs resumes from the next
one, and finishes as if it had not been killed."""

import json
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tasks.captcha import build_datasets, fingerprint_folder, split_dataset
from tasks.mnist import load_mnist, locate_mnist
from tasks.validation import validate_images

SCRIPT = Path(__file__).with_name("train_until_killed.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class KilledAndResumed(NamedTuple):
    """What a training killed between two epochs, then run again, showed."""

    first: str  # what the killed run printed
    work_after_kill: list[str]  # the steps whose training state the kill left in work/
    second: str  # what the run started again printed
    model: Path  # the model folder it saved


def _kill_and_resume(kind: str, data: object, results_dir: Path, epochs: int,
                     kill_after: int) -> KilledAndResumed:
    """Trains `data` with train_until_killed.py, kills it with SIGKILL once epoch `kill_after`'s
    state is saved, runs it again to its end and checks what any finished training must show."""
    record = results_dir.parent / f"{kind}.pickle"
    record.write_bytes(pickle.dumps(data))
    command = [sys.executable, str(SCRIPT), kind, str(record), str(results_dir), str(epochs)]
    process = subprocess.Popen([*command, str(kill_after)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("paused after epoch"):
                break
        first = "".join(lines)
        assert lines and lines[-1] == f"paused after epoch {kill_after}\n", first
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    work = results_dir / "work"
    work_after_kill = [path.name.split("-")[0] for path in work.iterdir()]

    again = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    second = again.stdout + again.stderr
    assert again.returncode == 0, second
    assert f"RESULT epochs_run={epochs}" in second
    model = Path(second.split(f"RESULT epochs_run={epochs} path=")[1].split()[0])
    assert len(json.loads((model / "history.json").read_text())["loss"]) == epochs
    assert not any(work.iterdir())  # the finished training's state is gone
    return KilledAndResumed(first, work_after_kill, second, model)


def test_a_killed_training_resumes_from_its_last_finished_epoch(captcha_dir, results_dir):
    manifest = validate_images.fn(fingerprint_folder.fn(captcha_dir), results_dir)
    datasets = build_datasets.fn(split_dataset.fn(manifest, 1, 0.2, 0.2, results_dir), "crnn",
                                 results_dir)

    run = _kill_and_resume("captcha", datasets, results_dir, epochs=5, kill_after=3)
    assert "epoch 3/5" in run.first and "epoch 4/5" not in run.first
    assert run.work_after_kill == ["train_model"]
    assert "resuming from epoch 4: epochs 1-3 restored" in run.second
    assert "epoch 1/5" not in run.second and "epoch 4/5" in run.second
    assert "epoch 5/5" in run.second


def test_a_killed_digit_training_resumes_from_its_third_epoch(mnist_dir, results_dir):
    source = locate_mnist.fn("local", mnist_dir, results_dir, "127.0.0.1", 9, 2.0)
    data = load_mnist.fn(source, results_dir)

    run = _kill_and_resume("digits", data, results_dir, epochs=4, kill_after=2)
    assert "dense epoch 2/4" in run.first and "epoch 3/4" not in run.first
    assert run.work_after_kill == ["train_digit_model"]
    assert "resuming from epoch 3: epochs 1-2 restored" in run.second
    assert "epoch 1/4" not in run.second and "epoch 2/4" not in run.second
    assert "dense epoch 3/4" in run.second and "dense epoch 4/4" in run.second
    kept = json.loads((run.model / "metrics.json").read_text())["kept_epoch"]
    assert kept["epochs_run"] == 4 and kept["because"].startswith(f"epoch {kept['epoch']}: val loss")
