"""Resumable training: a killed `fit` continues from its last finished epoch.

Keras' `BackupAndRestore` saves the weights, the optimizer's variables (its step count, so a
learning-rate schedule goes on where it was) and the epoch number after every epoch. It does not
save what other callbacks hold, so `ResumableTraining` adds, beside it in the same work folder:

    work folder/
      checkpoint/           BackupAndRestore's files (latest weights + previous, epoch number)
      state.json            the epochs' history and early stopping's selector (best, wait, epoch)
      best-<epoch>.weights.npz  early stopping's best weights, when it restores them

`state.json` is written before the checkpoint each epoch, so after a kill it is never behind the
checkpoint; the best weights are written under a temporary name and renamed, so a kill leaves the
previous best or the new one whole. A resumed run sees its data in another shuffled order and with
other augmentations than an uninterrupted one would (tf.data starts its random sequences over), so
results agree within noise, not bit for bit. Only public Keras API: the epoch a run resumes from
is the first epoch `fit` begins.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ocr_core.files import atomic_path, read_json, remove_path, write_json
from ocr_core.training.stopping import SelectiveStopping

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"


def best_weights_file(best_epoch: int) -> str:
    """The file of early stopping's best weights of `best_epoch` (counted from 0).

    A new best gets a new file, written before the `state.json` that points at it; older ones
    go only after, so a kill at any moment leaves the file the saved state names.
    """
    return f"best-{best_epoch + 1:04d}.weights.npz"


class ResumableTraining(keras.callbacks.BackupAndRestore):
    """BackupAndRestore plus the training state other callbacks keep in memory.

    Place it after `early_stopping` in the callback list: it restores early stopping's counters
    after that callback resets them, and saves them after it updates them.

    Args:
        folder: the training's work folder (one per training; keep it when a run is killed).
        early_stopping: the run's SelectiveStopping callback, or None.
    """

    def __init__(self, folder: str | os.PathLike[str],
                 early_stopping: SelectiveStopping | None = None) -> None:
        self.folder = Path(folder)
        super().__init__(str(self.folder / "checkpoint"), double_checkpoint=True)
        self.early_stopping = early_stopping
        self.history: dict[str, list[float]] = {}
        self.resumed_from = 0  # epochs restored (0: a fresh start)
        self._begun = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)  # restores weights, optimizer and the epoch to start from
        self._begun = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        if not self._begun:  # `fit` begins at the first epoch not done yet
            self._begun = True
            self._restore(done=epoch)

    def _restore(self, done: int) -> None:
        state_path = self.folder / STATE_FILE
        state = read_json(state_path) if done and state_path.exists() else None
        if not done:
            self.history = {}
            return
        if state is None or state["epochs"] < done:
            raise RuntimeError(f"{self.folder}: a checkpoint of epoch {done} without its training "
                               "state; delete the folder to start over")
        self.history = {name: values[:done] for name, values in state["history"].items()}
        self._restore_early_stopping(state["early_stopping"][done - 1])
        self.resumed_from = done
        logger.info("resuming from epoch %d: epochs 1-%d restored from %s", done + 1, done,
                    self.folder)

    def _restore_early_stopping(self, saved: dict[str, Any]) -> None:
        stopping = self.early_stopping
        if stopping is None:
            return
        stopping.selector.restore(saved)
        best_epoch = saved["best_epoch"]
        best = None if best_epoch is None else self.folder / best_weights_file(best_epoch)
        if best is not None and best.exists():
            with np.load(best) as stored:
                if int(stored["epoch"]) == best_epoch:
                    stopping.best_weights = [stored[f"w{i}"] for i in range(len(stored) - 1)]
            if stopping.best_weights is None:
                logger.warning("best weights of epoch %d not found; early stopping restores the "
                               "best epoch seen from now on", best_epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self._save_state(epoch)
        super().on_epoch_end(epoch, logs)  # the checkpoint, after the state it belongs with

    def _save_state(self, epoch: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self.folder / STATE_FILE
        snapshots = read_json(previous)["early_stopping"][:epoch] if previous.exists() else []
        stopping = self.early_stopping
        if stopping is not None:
            snapshots.append(stopping.selector.state())
            if stopping.selector.best_epoch == epoch and stopping.best_weights is not None:
                with atomic_path(self.folder / best_weights_file(epoch)) as tmp:
                    with open(tmp, "wb") as handle:
                        np.savez(handle, epoch=epoch, **{f"w{i}": w for i, w in
                                                         enumerate(stopping.best_weights)})
        else:
            snapshots.append({})
        write_json(previous, {"epochs": epoch + 1, "history": self.history,
                              "early_stopping": snapshots})
        # a resume may restore the state of the epoch before (its checkpoint lags by at most one)
        wanted = {best_weights_file(s["best_epoch"]) for s in snapshots[-2:]
                  if s and s["best_epoch"] is not None}
        for path in self.folder.glob("best-*.weights.npz"):
            if path.name not in wanted:
                remove_path(path)

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self._begun and (self.folder / STATE_FILE).exists():  # every epoch was done
            self._restore(done=read_json(self.folder / STATE_FILE)["epochs"])
        super().on_train_end(logs)  # deletes the checkpoint
        for path in [self.folder / STATE_FILE, *self.folder.glob("best-*.weights.npz")]:
            remove_path(path)
