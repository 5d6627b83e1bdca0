"""The main job at small scale, run as a user runs it: `ocr-pipeline captcha` in its own process
(a local Prefect server kept between commands, TensorFlow loaded only when a step needs it),
twice on one results root. One trained run serves every assertion."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CLI = Path(sys.executable).with_name("ocr-pipeline")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# 1,000 generated captchas (about 800 training images, batches of 16), 6 epochs: about 4,800
# images seen, half a minute of training on 2 cores. Seen: 90.8% (99/109) of the test split, and
# 84.3% (75/89) after a change of PNG bytes moved images between splits.
COMMAND = ("captcha", "--num-samples", "1000", "--epochs", "6")
TENSORFLOW_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} \d\d:)",
                                 re.MULTILINE)


def _imported(stderr: str, package: str) -> bool:
    """Whether `-X importtime` lines show `package` imported (its row is written once its
    import is done, so also after a quiet import)."""
    return re.search(rf"^import time:.*\|\s+{package}$", stderr, re.MULTILINE) is not None


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, Path]:
    """The command on a fresh results root, then again; each in a session of its own."""
    from tests.prefect_homes import prefect_home

    root = tmp_path_factory.mktemp("main-job") / "results"
    home = prefect_home(root.parent / "prefect-home")
    env = {k: v for k, v in os.environ.items()  # no server of an earlier test in this process
           if not k.startswith("TF_") and k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    env |= {"PYTHONPROFILEIMPORTTIME": "1", "PREFECT_HOME": str(home),
            "OCR_PIPELINE_LOCAL_SERVER_KEEP": "60"}  # the product's default is 600
    done = []
    record = home / "ocr-pipeline-server" / "server.json"
    try:
        for _ in range(2):
            process = subprocess.Popen([str(CLI), *COMMAND, "--results-dir", str(root)],
                                       cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            stdout, stderr = process.communicate(timeout=900)
            leftover = _group_outlives(process.pid)
            server = json.loads(record.read_text())
            done.append(subprocess.CompletedProcess(
                process.args, process.returncode, stdout,
                stderr + ("\nLEFTOVER" if leftover else "") + f"\nSERVER {server['pid']}"))
    finally:
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(json.loads(record.read_text())["pid"], signal.SIGTERM)
    return done[0], done[1], root


def _group_outlives(group: int, seconds: float = 10) -> bool:
    """Whether a process of the group is still there `seconds` after its leader exited (a
    render pool's resource tracker takes a moment to see its parent gone)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    return True


def _accuracy(stdout: str) -> tuple[int, int]:
    match = re.search(r"^test sequence accuracy:\s+\S+ \((\d+)/(\d+),", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


def test_it_learns(runs):
    first, _, _ = runs
    # exit 0: the learned-nothing guard at its default (50% validation accuracy) passed
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    correct, count = _accuracy(first.stdout)
    assert 50 <= count <= 150 and correct >= 0.75 * count, first.stdout  # a tenth, by digest


def test_it_prints_no_tensorflow_start_up_lines_and_leaves_only_its_kept_server(runs):
    first, again, _ = runs
    for run in (first, again):  # TensorFlow prints those whatever TF_CPP_MIN_LOG_LEVEL says
        assert not TENSORFLOW_LOG_LINE.findall(run.stderr), run.stderr[-3000:]
        assert "LEFTOVER" not in run.stderr, "a process of the command outlived it"
    # It trained: the model's module (it imports Keras) loaded. TensorFlow's own import lines are
    # not there: it loaded quietly, stderr set aside, while the server started.
    assert _imported(first.stderr, "ocr_core.captcha.models") and "training crnn (" in first.stderr


def test_the_rerun_uses_the_server_the_first_run_kept(runs):
    first, again, _ = runs
    assert first.stderr.rsplit("SERVER ", 1)[1] == again.stderr.rsplit("SERVER ", 1)[1]


def test_the_rerun_is_served_from_the_cache_without_loading_tensorflow(runs):
    first, again, root = runs
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert _accuracy(again.stdout) == _accuracy(first.stdout)
    finished = re.findall(r"Finished in state (\w+)\(", again.stderr)
    assert finished.count("Cached") == 9, finished  # every step but the check and the report
    assert not _imported(again.stderr, "tensorflow") and not _imported(again.stderr, "keras")
    bundles = [entry for entry in (root / "models").iterdir() if entry.suffix != ".tensorboard"]
    assert len(bundles) == 1, bundles  # trained once (its TensorBoard log lies beside it)
