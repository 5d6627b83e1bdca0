"""Fit a digit model with early stopping on a validation split (never the test set)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

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


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch, and its wall time in the logs (`epoch_seconds`)."""

    def __init__(self, name: str, epochs: int) -> None:
        super().__init__()
        self.name = name
        self.epochs = epochs
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logger.info(
            "%s epoch %d/%d: loss %.4f, accuracy %.2f%%, val_loss %.4f, val_accuracy %.2f%% (%.0f s)",
            self.name, epoch + 1, self.epochs, logs.get("loss", math.nan),
            100 * logs.get("accuracy", math.nan), logs.get("val_loss", math.nan),
            100 * logs.get("val_accuracy", math.nan), logs["epoch_seconds"])


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
                        callbacks=[EpochLog(model.name, epochs), early_stopping, *callbacks])
    seconds = time.perf_counter() - start
    values = {key: [float(value) for value in series] for key, series in history.history.items()}
    best_epoch = int(np.argmin(values[MONITOR])) + 1
    return DigitTrainingResult(model=model, history=values, best_epoch=best_epoch, seconds=seconds)
