"""TensorBoard event files for every training: `tensorboard --logdir <results>/models`.

Each epoch writes, at step = epoch number (1-based, as the log lines count): every figure in the
epoch's logs (losses, the kind's validation figures such as CER and sequence accuracy, the
epoch's seconds), the optimizer's learning rate, and a few validation samples as a text table
(truth and what the model read). The figures are read from the logs the kind's metric callbacks
filled; nothing is computed again. A training resumed after a kill starts at its first unfinished
epoch, so its events continue the same curves in the same folder (an epoch that was logged but
not checkpointed before the kill is logged again, at the same step).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from ocr_core.captcha.ctc import Vocabulary

Samples = Callable[[keras.Model], list[tuple[str, str]]]
"""(truth, read) pairs of a few validation images under the current weights."""

SAMPLE_COUNT = 8


class TensorBoardLog(keras.callbacks.Callback):
    """Writes each epoch's logs, the learning rate and validation samples as TensorBoard events.

    Place it after the callbacks that add figures to the logs.

    Args:
        folder: the event files' folder (created when training begins).
        samples: reads a few validation images; None writes no samples.
    """

    def __init__(self, folder: str | os.PathLike[str], samples: Samples | None = None) -> None:
        super().__init__()
        self.folder = os.fspath(folder)
        self.samples = samples
        self.writer: tf.summary.SummaryWriter | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.writer = tf.summary.create_file_writer(self.folder)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.writer is None:
            return
        with self.writer.as_default(step=epoch + 1):
            for name, value in (logs or {}).items():
                if isinstance(value, numbers.Number) or np.ndim(value) == 0:
                    tf.summary.scalar(name, float(value))
            tf.summary.scalar("learning_rate", self._learning_rate())
            if self.samples is not None:
                rows = [f"| {truth} | {read} | {'yes' if truth == read else '**no**'} |"
                        for truth, read in self.samples(self.model)]
                tf.summary.text("validation_samples", "\n".join(
                    ["| truth | read | right |", "|---|---|---|", *rows]))
        self.writer.flush()

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def captcha_samples(validation: tf.data.Dataset, vocabulary: Vocabulary,
                    count: int = SAMPLE_COUNT) -> Samples:
    """The first `count` images of a batched (images, encoded labels) validation dataset, read
    with greedy decoding."""
    from ocr_core.captcha.training import read_split

    first = validation.unbatch().take(count).batch(count).cache()

    def read(model: keras.Model) -> list[tuple[str, str]]:
        reading = read_split(model, first, vocabulary)
        return list(zip(reading.truths, reading.predictions, strict=True))

    return read


def digit_samples(images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                  count: int = SAMPLE_COUNT) -> Samples:
    """The first `count` of (count, 28, 28) uint8 validation digits, read by the model."""
    inputs = images[:count, ..., np.newaxis].astype("float32") / 255.0  # as the pipelines scale

    def read(model: keras.Model) -> list[tuple[str, str]]:
        best = np.asarray(model(inputs, training=False)).argmax(axis=-1)
        return [(classes[truth], classes[read]) for truth, read in zip(labels[:count], best,
                                                                        strict=True)]

    return read
