"""A training interrupted after some epochs, fitted again, resumes where it stopped."""

import contextlib
import json

import keras
import pytest

from ocr_core.captcha.ctc import Vocabulary
from ocr_core.captcha.models import get_recipe
from ocr_core.captcha.pipeline import load_split, save_split
from ocr_core.captcha.training import MONITOR, TrainingPlan, train_captcha_model
from ocr_core.data import dataset as ds
from ocr_core.training.resume import STATE_FILE
from tests.ocr_core.training.callbacks import Interrupt


@pytest.mark.slow
def test_an_interrupted_fit_resumes_with_its_history_and_early_stopping(tmp_path, captcha_dir,
                                                                      caplog):
    records = ds.index_images(ds.list_pngs(captcha_dir))
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
    recipe = get_recipe("crnn")
    for name, part in (("train", records[:32]), ("validation", records[32:])):
        save_split(part, vocabulary, tmp_path / name, height=recipe.height, width=recipe.width,
                   max_label_length=5)

    def run(*callbacks):
        plan = TrainingPlan(batch_size=16, epochs=4, patience=4, start_from_epoch=0)
        return train_captcha_model(
            recipe, vocabulary, load_split(tmp_path / "train", 16, shuffle=True, seed=0),
            load_split(tmp_path / "validation", 16), plan=plan, seed=0,
            callbacks=callbacks, backup_dir=tmp_path / "work")

    with pytest.raises(KeyboardInterrupt):
        run(Interrupt(2))
    state = json.loads((tmp_path / "work" / STATE_FILE).read_text())
    assert state["epochs"] == 2 and len(state["history"]["loss"]) == 2
    saved = state["early_stopping"][1]

    restored = {}

    class Peek(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            restored.setdefault("epoch", epoch)
            restored.setdefault("iterations", int(self.model.optimizer.iterations.numpy()))

    with caplog.at_level("INFO", logger="ocr_core.training.resume"):
        result = run(Peek())
    assert "resuming from epoch 3" in caplog.text
    assert restored == {"epoch": 2, "iterations": 2 * 2}  # 2 epochs of 2 batches: the LR schedule
    assert len(result.history["loss"]) == 4
    assert result.history["loss"][:2] == state["history"]["loss"]
    assert result.history[MONITOR][result.best_epoch - 1] == min(result.history[MONITOR])
    first_two_best = min(state["history"][MONITOR])
    assert saved["best"][MONITOR] == pytest.approx(first_two_best)
    assert not (tmp_path / "work" / STATE_FILE).exists()  # a finished training leaves no state


def test_a_kill_while_saving_a_new_best_keeps_the_best_the_state_names(tmp_path, monkeypatch):
    import numpy as np

    import ocr_core.training.resume as resume
    from ocr_core.training.stopping import DEFAULT_RULE, RULES, EpochSelector, SelectiveStopping

    stopping = SelectiveStopping(EpochSelector(RULES[DEFAULT_RULE], start_from_epoch=0, patience=3))
    backup = resume.ResumableTraining(tmp_path, stopping)
    for epoch in range(2):  # epochs 1 and 2 each a new best
        stopping.selector.best_epoch = epoch
        stopping.best_weights = [np.full(2, float(epoch))]
        backup.history = {"loss": [1.0] * (epoch + 1)}
        if epoch == 1:  # killed after the new best weights, before the state that names them
            monkeypatch.setattr(resume, "write_json", _killed)
        with pytest.raises(KeyboardInterrupt) if epoch == 1 else contextlib.nullcontext():
            backup._save_state(epoch)

    saved = json.loads((tmp_path / STATE_FILE).read_text())["early_stopping"][-1]
    assert saved["best_epoch"] == 0
    with np.load(tmp_path / resume.best_weights_file(saved["best_epoch"])) as stored:
        assert int(stored["epoch"]) == 0 and stored["w0"].tolist() == [0.0, 0.0]


def _killed(*args, **kwargs):
    raise KeyboardInterrupt
