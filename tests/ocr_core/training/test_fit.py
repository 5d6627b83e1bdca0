"""The one training loop with the digit kind's rule: which epoch it keeps, and resume."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from ocr_core.mnist.training import RULE, digit_summary
from ocr_core.training.fit import fit
from ocr_core.training.resume import STATE_FILE
from tests.ocr_core.training.callbacks import Interrupt, ScriptedFigures

LOSS, ACCURACY = "val_loss", "val_accuracy"


def _data() -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((np.ones((8, 2)), np.zeros((8, 1)))).batch(4)


def _fit(figures, epochs, patience, **kwargs):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer=
                                                                     keras.initializers.Ones())])
    model.compile(optimizer="sgd", loss="mse")
    return fit(model, _data(), _data(), epochs=epochs, rule=RULE, patience=patience,
               metrics=[figures], summary=digit_summary, name="dense", **kwargs)


def test_keeps_the_lowest_val_loss_stops_on_patience_and_restores_its_weights():
    figures = ScriptedFigures({LOSS: [1.0, 0.5, 0.4, 0.45, 0.41, 0.3, 0.2, 0.1],
                                ACCURACY: [0.5, 0.8, 0.85, 0.9, 0.95, 0.96, 0.97, 0.98]})
    result = _fit(figures, epochs=8, patience=2)
    assert result.epochs_run == 5 and result.stopped_early
    assert result.best_epoch == 3
    for restored, kept in zip(result.model.get_weights(), figures.weights[2], strict=True):
        np.testing.assert_array_equal(restored, kept)
    assert result.kept_because.startswith("epoch 3: val loss 0.4, val accuracy 0.85 (better than "
                                          "epoch 2; rule loss-then-accuracy)")
    assert result.kept_epoch(8) == {"epoch": 3, "epochs_run": 5, "epochs_planned": 8,
                                    "stopped_early": True, "because": result.kept_because}
    assert len(result.history["epoch_seconds"]) == 5
    metrics = result.metrics(8, [LOSS])
    assert metrics["validation"] == {LOSS: 0.4}  # the kept epoch's figure, not the last one's
    assert metrics["training"] == {"best_epoch": 3, "epochs_run": 5, "seconds": result.seconds}
    assert metrics["kept_epoch"] == result.kept_epoch(8)


def test_a_tied_val_loss_goes_to_the_better_val_accuracy():
    # Keras's EarlyStopping on val_loss alone kept the first of tied epochs (epoch 2 here).
    figures = ScriptedFigures({LOSS: [0.5, 0.4, 0.4, 0.4], ACCURACY: [0.8, 0.85, 0.9, 0.88]})
    result = _fit(figures, epochs=4, patience=4)
    assert result.best_epoch == 3 and not result.stopped_early
    assert "val loss tied with epoch 2, tie broken by val accuracy" in result.kept_because


def test_a_killed_fit_resumes_from_its_last_finished_epoch(tmp_path, caplog):
    history = {LOSS: [1.0, 0.3, 0.5, 0.6, 0.2], ACCURACY: [0.5, 0.9, 0.8, 0.7, 0.95]}
    with pytest.raises(KeyboardInterrupt):
        _fit(ScriptedFigures(history), epochs=5, patience=5, backup_dir=tmp_path,
             callbacks=[Interrupt(2)])
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["epochs"] == 2 and state["early_stopping"][1]["best_epoch"] == 1

    epochs_begun = []

    class Seen(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_begun.append(epoch)

    with caplog.at_level("INFO"):
        result = _fit(ScriptedFigures(history), epochs=5, patience=2, backup_dir=tmp_path,
                      callbacks=[Seen()])
    assert epochs_begun == [2, 3]  # patience 2 after the restored best epoch 2
    assert "resuming from epoch 3: epochs 1-2 restored" in caplog.text
    assert result.history[LOSS] == [1.0, 0.3, 0.5, 0.6] and result.best_epoch == 2
    assert not (tmp_path / STATE_FILE).exists()
