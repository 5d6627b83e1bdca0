"""A Prefect progress artifact moved forward after each training epoch, for both model kinds."""

from __future__ import annotations

import keras
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext


class ProgressArtifact(keras.callbacks.Callback):
    """Shows the share of `epochs` done as the progress artifact `key` of the current task run.

    A resumed training's first update jumps to the epochs already done.
    """

    def __init__(self, key: str, epochs: int, description: str) -> None:
        super().__init__()
        self.epochs = epochs
        self.artifact_id = create_progress_artifact(0.0, key=key, description=description)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        update_progress_artifact(self.artifact_id, 100.0 * (epoch + 1) / self.epochs)


def epoch_progress(key: str, epochs: int, description: str) -> list[keras.callbacks.Callback]:
    """[ProgressArtifact] inside a task run; [] in a direct call (`.fn`), which has no run to
    attach it to."""
    return [ProgressArtifact(key, epochs, description)] if TaskRunContext.get() else []
