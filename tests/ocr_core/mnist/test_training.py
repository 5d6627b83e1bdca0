import numpy as np
import pytest

from ocr_core.mnist.data import split_validation
from ocr_core.mnist.models import build_model
from ocr_core.mnist.pipeline import evaluation_pipeline, training_pipeline
from ocr_core.mnist.training import RULE, digit_summary
from ocr_core.training.fit import fit


@pytest.mark.slow
def test_fit_stops_early_and_keeps_the_best_epoch(mnist_arrays):
    x_train, y_train = mnist_arrays[0], mnist_arrays[1]
    (train_x, train_y), (val_x, val_y) = split_validation(x_train, y_train, 0.2, seed=0)
    # A learning rate this high makes the validation loss bounce, so patience 1 ends early.
    model = build_model("dense", seed=0, learning_rate=0.5)
    result = fit(
        model, training_pipeline(train_x, train_y, batch_size=32, seed=0),
        evaluation_pipeline(val_x, val_y, batch_size=32), epochs=30, rule=RULE, patience=1,
        summary=digit_summary)
    history = result.history
    assert result.epochs_run < 30
    assert result.epochs_run == len(history["val_loss"]) == len(history["epoch_seconds"])
    assert result.best_epoch == int(np.argmin(history["val_loss"])) + 1
    # The returned model carries the best epoch's weights, not the last epoch's. Keras's own
    # loss, as in the history: at this learning rate some predictions are so confident and wrong
    # that evaluate_digits' clipped cross-entropy differs from it.
    restored_loss, _ = result.model.evaluate(evaluation_pipeline(val_x, val_y, batch_size=32),
                                             verbose=0)
    assert restored_loss == pytest.approx(history["val_loss"][result.best_epoch - 1], rel=1e-3)
    assert result.seconds > 0

