"""The flows and the tasks' logic used from plain Python, as cleanly as from the CLI."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocr_core.captcha.synthetic import plan_shards
from tasks.captcha import collect_captchas, generated_key, render_captcha_shard

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_a_tasks_logic_runs_outside_a_flow(tmp_path):
    folder = tmp_path / generated_key(10, 3)
    folder.mkdir(parents=True)
    (shard,) = plan_shards(10, 3)
    assert render_captcha_shard.fn(shard, str(folder)) == 10
    images = collect_captchas.fn(10, 3, tmp_path)
    assert images.count == 10 and len(list((tmp_path / images.path).glob("*.png"))) == 10
    assert images.path.startswith("data/synthetic/")


@pytest.mark.slow
def test_a_flow_called_from_plain_python_sets_the_process_up_like_the_cli(tmp_path):
    script = textwrap.dedent("""
        from flows.environment import apply_process_defaults

        apply_process_defaults()  # before Prefect loads: what the CLI does at its entry point
        from flows.captcha_ocr import captcha_ocr
        from ocr_core.config import CaptchaParams

        summary = captcha_ocr(CaptchaParams(num_samples=40, epochs=1, batch_size=8,
                                            min_val_accuracy=0))
        print("MODEL", summary.model_path)
    """)
    # A user's environment: none of the settings the test suite or the CLI would make.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TF_"))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"),
            "OCR_PIPELINE_RESULTS": str(tmp_path / "results")}
    process = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "MODEL " + str(tmp_path / "results" / "models") in process.stdout
    assert "Traceback" not in process.stderr, process.stderr[-3000:]
    assert "database is locked" not in process.stdout + process.stderr
    # Prefect's persisted results live under the results root, as with the CLI.
    assert any((tmp_path / "results" / "prefect-results").iterdir())
