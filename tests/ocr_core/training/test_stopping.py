"""Early stopping that can tell epochs apart: the rules on hand-made histories, and the callback."""

import keras
import numpy as np
import pytest

from ocr_core.captcha.models import get_recipe
from ocr_core.captcha.training import plan_training
from ocr_core.training.stopping import (
    DEFAULT_RULE,
    RULES,
    EpochSelector,
    SelectiveStopping,
    StoppingRule,
    select_epoch,
)
from tests.ocr_core.training.callbacks import ScriptedFigures

CER, LOSS, ACCURACY = "val_character_error_rate", "val_loss", "val_sequence_accuracy"

# Ten epochs: the CER saturates at 0.01 from epoch 6 while the validation loss keeps falling
# until epoch 9 and rises at epoch 10.
SATURATING = {
    CER: [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.01, 0.01, 0.01, 0.01],
    LOSS: [9.0, 4.0, 2.0, 1.0, 0.5, 0.30, 0.20, 0.10, 0.05, 0.07],
    ACCURACY: [0.0, 0.3, 0.6, 0.8, 0.9, 0.96, 0.96, 0.96, 0.96, 0.96],
}


def test_old_rule_keeps_the_first_eligible_epoch_the_new_one_the_best_loss():
    old = select_epoch(SATURATING, RULES["cer"], start_from_epoch=5, patience=4)
    assert old.kept_epoch == 6  # the first epoch it may keep: every later one only ties
    new = select_epoch(SATURATING, RULES[DEFAULT_RULE], start_from_epoch=5, patience=4)
    assert new.kept_epoch == 9
    assert new.reason.startswith("epoch 9: val CER 0.01, val loss 0.05")
    assert "tie broken by val loss" in new.reason and "epoch 8" in new.reason


def test_other_rules_on_the_same_history():
    def kept(name: str) -> int:
        return select_epoch(SATURATING, RULES[name], start_from_epoch=5, patience=4).kept_epoch

    assert kept("cer-last-tied") == 10  # the last of the tied epochs, even with a worse loss
    assert kept("accuracy-cer-loss") == 9
    assert kept("loss") == 9


def test_min_delta_ignores_a_loss_creeping_down():
    history = {CER: [0.1, 0.01, 0.01, 0.01, 0.01], LOSS: [1.0, 0.100, 0.0995, 0.0991, 0.0990]}
    rule = RULES["cer-then-loss-1pct"]
    selection = select_epoch(history, rule, start_from_epoch=0, patience=2)
    assert (selection.kept_epoch, selection.epochs_run) == (2, 4)
    assert select_epoch(history, RULES["cer-then-loss"], 0, 2).kept_epoch == 5


def test_a_better_primary_figure_wins_over_a_better_loss():
    history = {CER: [0.02, 0.01], LOSS: [0.1, 0.5]}
    selection = select_epoch(history, RULES[DEFAULT_RULE], start_from_epoch=0, patience=5)
    assert selection.kept_epoch == 2 and "better than epoch 1" in selection.reason


def test_a_six_epoch_plan_can_stop_once_converged():
    """12,000 generated training images: 6 epochs; converged after epoch 3."""
    plan = plan_training(12_000, get_recipe("crnn"))
    assert plan.epochs == 6
    converged = {CER: [0.9, 0.1, 0.002, 0.002, 0.003, 0.002],
                 LOSS: [9.0, 1.0, 0.030, 0.031, 0.040, 0.035]}
    selection = select_epoch(converged, RULES[plan.rule], plan.start_from_epoch, plan.patience)
    assert (selection.kept_epoch, selection.epochs_run) == (3, 5)
    # Today's plan (considered from epoch 4 with patience 4) could never stop a 6-epoch run.
    assert select_epoch(converged, RULES["cer"], 3, 4).epochs_run == 6


def test_selector_state_round_trips_for_resuming():
    rule = RULES[DEFAULT_RULE]
    selector = EpochSelector(rule, start_from_epoch=0, patience=3)
    for epoch in range(3):
        selector.update(epoch, {name: values[epoch] for name, values in SATURATING.items()})
    resumed = EpochSelector(rule, start_from_epoch=0, patience=3)
    resumed.restore(selector.state())
    assert resumed == selector


def test_no_epoch_considered_is_an_error():
    with pytest.raises(ValueError, match="no epoch from 4 in a history of 2"):
        select_epoch({CER: [0.1, 0.1], LOSS: [1, 1]}, RULES["cer"], start_from_epoch=3,
                     patience=1)


def test_callback_stops_on_patience_and_restores_the_kept_epoch(caplog):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    figures = ScriptedFigures({CER: [0.5, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1],
                                LOSS: [2.0, 1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]})
    rule = StoppingRule("test", ((CER, "min"), (LOSS, "min")))
    stopping = SelectiveStopping(EpochSelector(rule, start_from_epoch=0, patience=2))
    with caplog.at_level("INFO", logger="ocr_core.training.stopping"):
        model.fit(np.ones((8, 2)), np.zeros((8, 1)), epochs=8, verbose=0,
                  callbacks=[figures, stopping])
    assert len(figures.weights) == 5 and stopping.stopped_epoch == 4
    assert stopping.selector.best_epoch == 2
    for restored, kept in zip(model.get_weights(), figures.weights[2], strict=True):
        np.testing.assert_array_equal(restored, kept)
    assert "stopping after epoch 5" in caplog.text
    assert "kept epoch 3: val CER 0.1, val loss 0.5 (val CER tied with epoch 2" in caplog.text
