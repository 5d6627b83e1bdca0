"""The captcha kind of training: a plan fitted to the data, CTC loss and validation text metrics,
plugged into the one training loop (`ocr_core.training.fit`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from ocr_core.captcha.ctc import CTCLoss, Vocabulary, decode_texts
from ocr_core.captcha.metrics import character_error_rate, sequence_accuracy
from ocr_core.training.fit import TrainingResult, fit
from ocr_core.training.stopping import DEFAULT_RULE, RULES

if TYPE_CHECKING:  # annotations only: the caller hands in the recipe
    from ocr_core.captcha.models import Recipe

MONITOR = "val_character_error_rate"  # the stopping rules' first figure


@dataclass
class SplitReading:
    """What a model reads on a labelled split: texts, truths, confidences and per-image CTC loss."""

    predictions: list[str]
    truths: list[str]
    confidences: np.ndarray  # (n,) greedy path probabilities
    losses: np.ndarray  # (n,) CTC loss of each image

    def figures(self) -> dict[str, float]:
        """The validation figures an epoch's logs carry (Keras's `val_loss` is the same mean)."""
        return {"val_loss": float(np.mean(self.losses)),
                "val_sequence_accuracy": sequence_accuracy(self.predictions, self.truths),
                "val_character_error_rate": character_error_rate(self.predictions, self.truths)}


def traced_reader(model: keras.Model):
    """One traced call per batch: (images, encoded labels) -> (logits, per-image CTC loss)."""
    loss = CTCLoss()

    @tf.function(reduce_retracing=True)
    def read(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = model(images, training=False)  # (batch, time, classes)
        return logits, loss.call(labels, logits)  # (batch,)

    return read


def read_split(model: keras.Model, dataset: tf.data.Dataset, vocabulary: Vocabulary,
               reader=None) -> SplitReading:
    """Read a batched dataset of (images, encoded labels) with greedy decoding, in one pass.

    Args:
        reader: a `traced_reader(model)` to reuse (it traces once); a new one by default.
    """
    reader = reader or traced_reader(model)
    predictions, truths, confidences, losses = [], [], [], []
    for images, labels in dataset:
        logits, loss = reader(images, labels)
        texts, confidence = decode_texts(logits.numpy(), vocabulary)
        predictions += texts
        truths += vocabulary.decode_batch(labels.numpy())
        confidences.append(confidence)
        losses.append(loss.numpy())
    if not truths:
        raise ValueError("no images to read: the dataset is empty")
    return SplitReading(predictions, truths, np.concatenate(confidences), np.concatenate(losses))


class ValidationPass(keras.callbacks.Callback):
    """The epoch's one validation pass: adds `val_loss`, validation sequence accuracy and
    character error rate to each epoch's logs from one traced call per batch (training runs
    without Keras's own validation pass, which would read the same images again)."""

    def __init__(self, dataset: tf.data.Dataset, vocabulary: Vocabulary) -> None:
        super().__init__()
        self.dataset = dataset
        self.vocabulary = vocabulary
        self._reader = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reader = traced_reader(self.model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        figures = read_split(self.model, self.dataset, self.vocabulary, self._reader).figures()
        if logs is not None:
            logs.update(figures)


def text_summary(logs: dict) -> str:
    """An OCR epoch in a few numbers: losses, validation sequence accuracy and CER."""
    return (f"loss {logs.get('loss', math.nan):.3f}, val_loss {logs.get('val_loss', math.nan):.3f}, "
            f"val sequence accuracy {100 * logs.get('val_sequence_accuracy', math.nan):.1f}%, "
            f"val CER {logs.get('val_character_error_rate', math.nan):.3f}")


TARGET_IMAGES_SEEN = 72_000
AUGMENTED_TARGET_IMAGES_SEEN = 160_000
MIN_STEPS_PER_EPOCH = 40
MIN_BATCH_SIZE = 16
MAX_EPOCHS = 1000
EPOCH_SLACK = 0.05  # of an epoch: a plan that falls short of its target by less gets no extra one
MIN_PATIENCE = 2


@dataclass(frozen=True)
class TrainingPlan:
    """How long one training runs and in which batches, fitted to the training set's size.

    The defaults aim at a number of images seen, not a number of epochs: 3 epochs of the main
    job's 24,000 generated captchas and 250 epochs of 640 augmented real ones are each what the
    data needs. Augmented images are new and harder every epoch, so augmented training sees more
    of them (96,000 -> 160,000 took real development captchas from 97.8% to 99.3%). Plain
    training: 24,000 distinct images in batches of 32 read generated captchas better than 16,000
    seen more often in batches of 64, and a third epoch of them drops a third to a half fewer
    doubled characters than two (docs/training.md). Early stopping
    (`ocr_core.training.stopping`, `rule`) considers epochs from `start_from_epoch` (0-based) on.
    """

    batch_size: int
    epochs: int
    patience: int
    start_from_epoch: int
    rule: str = DEFAULT_RULE

    def describe(self, train_images: int) -> str:
        return (f"{self.epochs} epochs of {train_images} images in batches of {self.batch_size} "
                f"(about {self.epochs * train_images:,} images seen); early stopping ({self.rule}) "
                f"from epoch {self.start_from_epoch + 1} with patience {self.patience}")


def plan_training(
    train_images: int,
    recipe: Recipe,
    *,
    augment: bool = False,
    epochs: int | None = None,
    patience: int | None = None,
    batch_size: int | None = None,
) -> TrainingPlan:
    """The training plan for `train_images` images; given values win over the derived defaults.

    - batch size: the recipe's, halved (down to 16) until an epoch has at least 40 steps;
    - epochs: enough to see about 72,000 images, 160,000 with augmentation (at most 1,000); the
      last 5% of an epoch does not add one (23,979 images: 3 epochs, not 4);
    - early stopping considers epochs from the end of the first third on (before it, a high
      learning rate makes the figures swing) with a patience of a tenth of the epochs, at least
      2: a plan of 6 or more epochs can stop once its validation figures stop moving.
    """
    if train_images < 1:
        raise ValueError(f"train_images must be positive, got {train_images}")
    if batch_size is None:
        batch_size = recipe.batch_size
        while batch_size > MIN_BATCH_SIZE and train_images / batch_size < MIN_STEPS_PER_EPOCH:
            batch_size //= 2
    if epochs is None:
        target = AUGMENTED_TARGET_IMAGES_SEEN if augment else TARGET_IMAGES_SEEN
        epochs = min(MAX_EPOCHS, max(1, math.ceil(target / train_images - EPOCH_SLACK)))
    if patience is None:
        patience = max(MIN_PATIENCE, math.ceil(epochs / 10))
    return TrainingPlan(batch_size=batch_size, epochs=epochs, patience=patience,
                        start_from_epoch=epochs // 3)


def learning_rate_schedule(recipe: Recipe, peak: float, total_steps: int):
    """Constant, or linear warm-up over ~5% of the steps then cosine decay to ~0."""
    if not recipe.warmup_cosine:
        return peak
    warmup = max(1, total_steps // 20)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 100, decay_steps=max(1, total_steps - warmup), alpha=0.01,
        warmup_target=peak, warmup_steps=warmup)


def train_captcha_model(
    recipe: Recipe,
    vocabulary: Vocabulary,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    plan: TrainingPlan,
    learning_rate: float | None = None,
    seed: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    backup_dir: Path | None = None,
) -> TrainingResult:
    """Train a new model of `recipe` as `plan` says; return it with the best epoch's weights.

    The captcha kind of the one training loop (`ocr_core.training.fit.fit`): CTC loss, the learning
    rate schedule, one validation pass per epoch (`ValidationPass`: loss and text metrics).
    `train` must be batched with
    `plan.batch_size`. Early stopping follows `plan.rule` (by default the validation character
    error rate, which moves even while whole-label accuracy is still 0, ties broken by validation
    loss), since accuracy swings at a high learning rate. `backup_dir`: resume after a kill.
    """
    keras.utils.set_random_seed(seed)
    model = recipe.build_model(vocabulary.num_classes)
    steps_per_epoch = int(train.cardinality())
    schedule = learning_rate_schedule(
        recipe, learning_rate or recipe.learning_rate, plan.epochs * max(steps_per_epoch, 1))
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=5.0), loss=CTCLoss())
    return fit(model, train, None, epochs=plan.epochs, rule=RULES[plan.rule],
               patience=plan.patience, start_from_epoch=plan.start_from_epoch,
               metrics=[ValidationPass(validation, vocabulary)], callbacks=callbacks,
               summary=text_summary, backup_dir=backup_dir)
