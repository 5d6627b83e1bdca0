import keras
import numpy as np
import pytest

from ocr_core.captcha.ctc import Vocabulary
from ocr_core.captcha.metrics import character_error_rate
from ocr_core.captcha.models import get_recipe
from ocr_core.captcha.pipeline import load_split, save_split
from ocr_core.captcha.training import MONITOR, TrainingPlan, plan_training, read_split, train_captcha_model
from ocr_core.data import dataset as ds


class TestPlanTraining:
    """Training length follows the data: the same defaults learn from 750 images and from 24,000."""

    def test_main_job_gets_three_epochs_of_batch_32(self):
        plan = plan_training(24_000, get_recipe("crnn"))
        assert plan == TrainingPlan(batch_size=32, epochs=3, patience=2, start_from_epoch=1,
                                    rule="cer-then-loss")

    def test_a_split_a_little_short_of_the_target_gets_no_extra_epoch(self):
        # The main job's training split varies with the images' digests around 24,000.
        assert plan_training(23_979, get_recipe("crnn")).epochs == 3
        assert plan_training(24_001, get_recipe("crnn")).epochs == 3
        assert plan_training(22_000, get_recipe("crnn")).epochs == 4

    def test_small_real_set_gets_small_batches_and_many_epochs(self):
        plan = plan_training(748, get_recipe("crnn"))
        assert plan == TrainingPlan(batch_size=16, epochs=97, patience=10, start_from_epoch=32)
        assert plan.epochs * 748 >= 72_000

    def test_augmented_training_sees_more_images(self):
        plan = plan_training(748, get_recipe("crnn"), augment=True)
        assert plan == TrainingPlan(batch_size=16, epochs=214, patience=22, start_from_epoch=71)
        assert plan_training(640, get_recipe("crnn"), augment=True).epochs == 250
        assert plan_training(16_000, get_recipe("crnn"), augment=True).epochs == 10

    def test_batch_halves_until_an_epoch_has_40_steps(self):
        assert plan_training(1_000, get_recipe("crnn")).batch_size == 16
        assert plan_training(1_280, get_recipe("crnn")).batch_size == 32
        assert plan_training(10, get_recipe("crnn")).batch_size == 16

    def test_epochs_are_capped(self):
        assert plan_training(40, get_recipe("crnn")).epochs == 1000
        assert plan_training(48, get_recipe("crnn")).epochs == 1000

    def test_given_values_win(self):
        plan = plan_training(748, get_recipe("crnn"), epochs=80, patience=20, batch_size=8)
        assert plan == TrainingPlan(batch_size=8, epochs=80, patience=20, start_from_epoch=26)

    def test_no_images(self):
        with pytest.raises(ValueError, match="train_images must be positive, got 0"):
            plan_training(0, get_recipe("crnn"))


class _WreckLastEpoch(keras.callbacks.Callback):
    """Zeroes every weight during the last epoch, so the last epoch is the worst one."""

    def __init__(self, last_epoch: int) -> None:
        super().__init__()
        self.last_epoch = last_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.last_epoch:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])


MEMORISED_EPOCHS = 40


@pytest.fixture(scope="module")
def overfitted(tmp_path_factory, captcha_dir):
    """The overfit canary: the crnn recipe (its default learning rate and schedule) trained on 40
    captchas and validated on the same 40, so it must read them back; its last epoch wrecked."""
    folder = tmp_path_factory.mktemp("overfit")
    records = ds.index_images(ds.list_pngs(captcha_dir))
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
    recipe = get_recipe("crnn")
    save_split(records, vocabulary, folder / "train", height=recipe.height, width=recipe.width,
               max_label_length=5)
    plan = TrainingPlan(batch_size=8, epochs=MEMORISED_EPOCHS, patience=MEMORISED_EPOCHS,
                        start_from_epoch=0)
    validation = load_split(folder / "train", 8)
    result = train_captcha_model(recipe, vocabulary, load_split(folder / "train", 8, shuffle=True, seed=0),
                                 validation, plan=plan, seed=0,
                                 callbacks=[_WreckLastEpoch(MEMORISED_EPOCHS - 1)])
    return result, validation, vocabulary, [r.label for r in records]


@pytest.mark.slow
class TestFit:
    def test_the_canary_memorises_its_images(self, overfitted):
        """Fails when learning is broken (a CTC loss without gradient, labels that do not match
        the images): 40 images seen 40 times are read back whole. Seen: every one of them from
        about epoch 23 on (CPUs differ; the kept epoch is the best of 39)."""
        result, validation, vocabulary, labels = overfitted
        best = result.best_epoch - 1
        assert result.history["val_sequence_accuracy"][best] >= 0.95, result.history
        # the restored weights read the file names back (not only the encoded labels: a broken
        # encoding memorised consistently would pass that)
        predictions = read_split(result.model, validation, vocabulary).predictions
        correct = sum(p == t for p, t in zip(predictions, labels, strict=True))
        assert correct >= 0.95 * len(labels), list(zip(predictions, labels, strict=True))

    def test_early_stopping_restores_the_best_epochs_weights(self, overfitted):
        result, validation, vocabulary, _ = overfitted
        history = result.history[MONITOR]
        assert history[-1] > 0.5  # the wrecked last epoch
        assert result.best_epoch < len(history)
        assert history[result.best_epoch - 1] == min(history)
        assert result.kept_because.startswith(f"epoch {result.best_epoch}: val CER ")
        assert not result.stopped_early
        reading = read_split(result.model, validation, vocabulary)
        assert character_error_rate(reading.predictions, reading.truths) == pytest.approx(min(history))

    def test_one_validation_pass_gives_the_loss_and_the_text_metrics(self, overfitted):
        result, validation, vocabulary, _ = overfitted
        reading = read_split(result.model, validation, vocabulary)
        best = result.best_epoch - 1
        assert reading.figures()["val_loss"] == pytest.approx(result.history["val_loss"][best], rel=1e-4)
        # the same mean Keras's own validation pass computes
        keras_loss = result.model.evaluate(validation, verbose=0)
        assert keras_loss == pytest.approx(result.history["val_loss"][best], rel=1e-4)

    def test_history_and_output_shape(self, overfitted):
        result, _, vocabulary, _ = overfitted
        assert set(result.history) >= {"loss", "val_loss", "val_sequence_accuracy", MONITOR,
                                       "epoch_seconds"}
        assert len(result.history["loss"]) == MEMORISED_EPOCHS
        assert result.model.output_shape == (None, 32, vocabulary.num_classes)
