"""The one training loop of both model kinds: early stopping that can tell epochs apart, resume
after a kill, and a log line per epoch (the check that a model learned something:
`ocr_core.training.learned`).

A model kind plugs in what differs: its compiled model, the callbacks that add its validation
figures to each epoch's logs (captchas: text metrics), the `StoppingRule` that compares epochs on
them and a one-line summary of an epoch. The captcha kind: `ocr_core.captcha.training`; digits:
`ocr_core.mnist.training`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from ocr_core.training.resume import ResumableTraining
from ocr_core.training.stopping import EpochSelector, SelectiveStopping, StoppingRule

logger = logging.getLogger(__name__)


class EpochLog(keras.callbacks.Callback):
    """Logs one line per epoch and records its wall time in the logs (`epoch_seconds`).

    Args:
        epochs: the planned number of epochs, for "epoch 3/10".
        summary: turns an epoch's logs into the line's metrics part.
        name: what is being trained, prefixed to the line when given.
    """

    def __init__(self, epochs: int, summary: Callable[[dict], str], name: str = "") -> None:
        super().__init__()
        self.epochs = epochs
        self.summary = summary
        self.prefix = f"{name} " if name else ""
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logger.info("%sepoch %d/%d: %s (%.0f s)", self.prefix, epoch + 1, self.epochs,
                    self.summary(logs), logs["epoch_seconds"])


@dataclass
class TrainingResult:
    """The fitted model (the kept epoch's weights restored), its per-epoch history, which epoch
    was kept (1-based) and why, and whether patience stopped the run before its last epoch."""

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    seconds: float
    kept_because: str = ""
    stopped_early: bool = False

    @property
    def epochs_run(self) -> int:
        return len(self.history["loss"])

    def kept_epoch(self, epochs_planned: int) -> dict[str, object]:
        """The "kept epoch N because ..." record a model's metrics.json carries."""
        return {"epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "epochs_planned": epochs_planned, "stopped_early": self.stopped_early,
                "because": self.kept_because}

    def metrics(self, epochs_planned: int, validation: Sequence[str]) -> dict[str, Any]:
        """What a bundle's metrics.json says of its training, for either kind: the kept epoch's
        `validation` figures, how the run went, and why that epoch was kept."""
        best = self.best_epoch - 1
        return {"validation": {name: self.history[name][best] for name in validation},
                "training": {"best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                             "seconds": self.seconds},
                "kept_epoch": self.kept_epoch(epochs_planned)}


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset | None,
    *,
    epochs: int,
    rule: StoppingRule,
    patience: int,
    start_from_epoch: int = 0,
    metrics: Sequence[keras.callbacks.Callback] = (),
    callbacks: Sequence[keras.callbacks.Callback] = (),
    summary: Callable[[dict], str],
    backup_dir: Path | None = None,
    name: str = "",
) -> TrainingResult:
    """Train a compiled `model` for up to `epochs`; return it with the kept epoch's weights.

    `metrics` callbacks run first each epoch and add the figures `rule` compares (with
    `validation` None they make the whole validation pass, `val_loss` included); early stopping
    (`ocr_core.training.stopping`) considers epochs from `start_from_epoch` (0-based) on, stops after
    `patience` of them without a better one and restores the kept epoch's weights. With
    `backup_dir`, a killed run called again resumes from its last finished epoch
    (`ocr_core.training.resume`); the history then covers every epoch, `seconds` this call's only.
    """
    stopping = SelectiveStopping(EpochSelector(rule, start_from_epoch, patience))
    resume = [ResumableTraining(backup_dir, stopping)] if backup_dir is not None else []
    start = time.perf_counter()
    history = model.fit(
        train, validation_data=validation, epochs=epochs, verbose=0, shuffle=False,
        callbacks=[*metrics, EpochLog(epochs, summary, name=name), stopping, *callbacks, *resume],
    )
    seconds = time.perf_counter() - start
    values = {k: [float(v) for v in vs] for k, vs in
              (resume[0].history if resume else history.history).items()}
    selector = stopping.selector
    return TrainingResult(model=model, history=values, best_epoch=selector.best_epoch + 1,
                          seconds=seconds, kept_because=selector.reason,
                          stopped_early=len(values["loss"]) < epochs)
