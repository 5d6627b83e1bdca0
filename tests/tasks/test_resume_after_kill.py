"""A training killed with SIGKILL after a few epochs resumes from the last finished one."""

import json
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.captcha import build_datasets, fingerprint_folder, split_dataset
from tasks.validation import validate_images

SCRIPT = Path(__file__).with_name("train_until_killed.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _start(record: Path, results_dir: Path, epochs: int, pause: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(record), str(results_dir), str(epochs), str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_finished_epoch(captcha_dir, results_dir,
                                                                 tmp_path):
    manifest = validate_images.fn(fingerprint_folder.fn(captcha_dir), results_dir)
    datasets = build_datasets.fn(split_dataset.fn(manifest, 1, 0.2, 0.2, results_dir), "crnn",
                                 results_dir)
    record = tmp_path / "datasets.pickle"
    record.write_bytes(pickle.dumps(datasets))

    first = _start(record, results_dir, epochs=5, pause=30)
    try:
        lines = []
        for line in first.stdout:
            lines.append(line)
            if "epoch 3/5" in line:
                break
        assert "epoch 3/5" in lines[-1], "".join(lines)
        time.sleep(2)  # epoch 3's state is saved; the run waits at the start of epoch 4
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
    work = results_dir / "work"
    assert [p.name.split("-")[0] for p in work.iterdir()] == ["train_model"]

    second = subprocess.run(
        [sys.executable, str(SCRIPT), str(record), str(results_dir), "5", "0"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert "resuming from epoch 4: epochs 1-3 restored" in output
    assert "epoch 1/5" not in output and "epoch 4/5" in output and "epoch 5/5" in output
    assert "RESULT epochs_run=5" in output
    model = Path(output.split("RESULT epochs_run=5 path=")[1].split()[0])
    assert len(json.loads((model / "history.json").read_text())["loss"]) == 5
    assert not any(work.iterdir())  # the finished training's state is gone
