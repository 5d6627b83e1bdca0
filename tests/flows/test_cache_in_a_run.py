"""Code identity and collection in real runs: an edit to the model code retrains without
regenerating data; pruning the old keys frees their space, and a later run that needs them
recomputes them correctly."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.captcha_ocr import captcha_ocr
from flows.cli import main
from ocr_core.config import CaptchaParams
from tasks import code_identity
from tests.flows.task_runs import task_states

pytestmark = pytest.mark.slow
UNCACHED = {"publish_report", "check_learned"}
TRAINING = {"train_model", "evaluate_model", "plot_history", "plot_predictions"}


def _run(results_dir: Path):
    state = captcha_ocr(CaptchaParams(num_samples=40, epochs=1, patience=1, batch_size=8,
                                      min_val_accuracy=0, results_dir=results_dir),
                        return_state=True)
    assert state.is_completed(), state
    states = task_states(state.state_details.flow_run_id)
    return state.result(), {name for name, value in states.items() if value == "Completed"}


def _age_everything(root: Path, days: float) -> None:
    past = time.time() - days * 86400
    for path in root.rglob("*"):
        os.utime(path, (past, past))


def _edited_models(tmp_path: Path) -> Path:
    """A copy of the project's packages with a change to the captcha model code."""
    copy = tmp_path / "source"
    for package in code_identity.PROJECT_PACKAGES:
        shutil.copytree(code_identity.PROJECT_ROOT / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    models = copy / "ocr_core" / "captcha" / "models.py"
    models.write_text(models.read_text().replace("layers.Dropout(0.2)", "layers.Dropout(0.25)"))
    return copy


def test_an_edit_retrains_only_and_prune_collects_the_old_keys(
        prefect_server, results_dir, tmp_path, monkeypatch):
    first, _ = _run(results_dir)
    _age_everything(results_dir, 10)

    monkeypatch.setattr(code_identity, "PROJECT_ROOT", _edited_models(tmp_path))
    edited, recomputed = _run(results_dir)
    assert recomputed == TRAINING | UNCACHED  # the data steps are cache hits
    assert edited.model_path != first.model_path

    result = CliRunner().invoke(main, ["cache", "prune", "--older-than", "7d", "--yes",
                                       "--results-dir", str(results_dir)])
    assert result.exit_code == 0, result.output
    assert not Path(first.model_path).exists() and Path(edited.model_path).is_dir()
    assert any((results_dir / "data" / "synthetic").iterdir())  # read by the second run

    monkeypatch.undo()
    again, recomputed = _run(results_dir)
    assert recomputed == TRAINING | UNCACHED
    assert again.model_path == first.model_path
    assert (Path(again.model_path) / "model.keras").is_file()
