"""Where a training step writes, and what it does at its ends, for both model kinds.

A step trains into a bundle folder named by its step key and backs its state up, every epoch,
in a work folder of the same key (`ocr_core.training.resume`): a killed run called again resumes.
A complete bundle already in the folder (a run killed after saving it, before Prefect kept its
result) is the step's result and is not trained again; a run that refreshes the cache moves it
aside first (not deleted: other runs may still read it; `cache prune` collects it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ocr_core.files import move_aside
from ocr_core.layout import ResultsLayout
from ocr_core.training.tensorboard_folder import tensorboard_folder
from tasks.caching import current_step_key, refreshing_cache
from tasks.logs import run_logger
from tasks.records import TrainedModel

T = TypeVar("T", bound=TrainedModel)


@dataclass(frozen=True)
class TrainingStep:
    """The current training step's key, its bundle folder and its work folder."""

    key: str
    bundle: Path
    work: Path

    @property
    def logs(self) -> Path:
        """The training's TensorBoard events, beside its bundle (`<bundle>.tensorboard`)."""
        return tensorboard_folder(self.bundle)

    def finished(self, record: type[T]) -> T | None:
        """The record of a complete bundle already in the step's folder, or None."""
        finished = record.from_folder(self.bundle, self.key)
        if finished is not None:
            run_logger().info("a complete bundle is already in %s: not training again",
                              self.bundle)
        return finished


def training_step(results_dir: Path, task_name: str, bundle_name: str) -> TrainingStep:
    """The folders of the running training step: `models/<bundle_name>-<key>` and
    `work/<task_name>-<key>` under `results_dir`."""
    key = current_step_key()
    layout = ResultsLayout(results_dir)
    step = TrainingStep(key, layout.models / f"{bundle_name}-{key}",
                        layout.work / f"{task_name}-{key}")
    if refreshing_cache():
        move_aside(step.bundle)
        move_aside(step.logs)
    return step
