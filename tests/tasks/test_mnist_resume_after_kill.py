"""An MNIST training killed with SIGKILL after its second epoch resumes from the third."""

import json
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.mnist import load_mnist, locate_mnist

SCRIPT = Path(__file__).with_name("train_digits_until_killed.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _start(record: Path, results_dir: Path, epochs: int, pause: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(record), str(results_dir), str(epochs), str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)


@pytest.mark.slow
def test_a_killed_digit_training_resumes_from_its_third_epoch(mnist_dir, results_dir, tmp_path):
    source = locate_mnist.fn("local", mnist_dir, results_dir, "127.0.0.1", 9, 2.0)
    record = tmp_path / "digits.pickle"
    record.write_bytes(pickle.dumps(load_mnist.fn(source, results_dir)))

    first = _start(record, results_dir, epochs=4, pause=30)
    try:
        lines = []
        for line in first.stdout:
            lines.append(line)
            if "dense epoch 2/4" in line:
                break
        assert "dense epoch 2/4" in lines[-1], "".join(lines)
        time.sleep(2)  # epoch 2's state is saved; the run waits at the start of epoch 3
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
    work = results_dir / "work"
    assert [p.name.split("-")[0] for p in work.iterdir()] == ["train_digit_model"]

    second = subprocess.run(
        [sys.executable, str(SCRIPT), str(record), str(results_dir), "4", "0"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert "resuming from epoch 3: epochs 1-2 restored" in output
    assert "epoch 1/4" not in output and "epoch 2/4" not in output
    assert "dense epoch 3/4" in output and "dense epoch 4/4" in output
    assert "RESULT epochs_run=4" in output
    model = Path(output.split("RESULT epochs_run=4 path=")[1].split()[0])
    assert len(json.loads((model / "history.json").read_text())["loss"]) == 4
    kept = json.loads((model / "metrics.json").read_text())["kept_epoch"]
    assert kept["epochs_run"] == 4 and kept["because"].startswith(f"epoch {kept['epoch']}: val loss")
    assert not any(work.iterdir())  # the finished training's state is gone
