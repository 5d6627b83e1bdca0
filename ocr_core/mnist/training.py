"""Fit a digit model with early stopping on a validation split (never the test set)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ocr_core.training import EpochLog

MONITOR = "val_loss"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_training(concurrent: int) -> int:
    """TensorFlow threads for each of `concurrent` trainings sharing this machine's CPUs."""
    return max(1, available_cpus() // max(1, concurrent))


def digit_summary(logs: dict) -> str:
    """A classifier epoch in a few numbers: loss and accuracy, train and validation."""
    return (f"loss {logs.get('loss', math.nan):.4f}, "
            f"accuracy {100 * logs.get('accuracy', math.nan):.2f}%, "
            f"val_loss {logs.get('val_loss', math.nan):.4f}, "
            f"val_accuracy {100 * logs.get('val_accuracy', math.nan):.2f}%")


@dataclass
class DigitTrainingResult:
    """The fitted model (best epoch's weights restored) and its per-epoch history."""

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.history["loss"])


def fit_digit_model(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    epochs: int,
    patience: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> DigitTrainingResult:
    """Train a compiled model until the validation loss stops improving for `patience` epochs
    (or `epochs` run out); keep the weights of the epoch with the lowest validation loss."""
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=MONITOR, mode="min", patience=patience, restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=0, shuffle=False,
                        callbacks=[EpochLog(epochs, digit_summary, name=model.name), early_stopping,
                                   *callbacks])
    seconds = time.perf_counter() - start
    values = {key: [float(value) for value in series] for key, series in history.history.items()}
    best_epoch = int(np.argmin(values[MONITOR])) + 1
    return DigitTrainingResult(model=model, history=values, best_epoch=best_epoch, seconds=seconds)
