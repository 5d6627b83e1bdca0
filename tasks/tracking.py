"""What a training task logs to besides its bundle: TensorBoard always, MLflow when a team has a
tracking server (--mlflow or $MLFLOW_TRACKING_URI), the run tagged with the Prefect flow run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from prefect.runtime import flow_run

from ocr_core.training.mlflow_run import MlflowRun
from ocr_core.training.mlflow_setup import tracking_uri
from ocr_core.training.tensorboard import Samples, TensorBoardLog
from tasks.training_step import TrainingStep


@dataclass
class Tracking:
    """The callbacks of one training, and its MLflow run when there is one."""

    callbacks: list[keras.callbacks.Callback]
    mlflow: MlflowRun | None

    def fields(self) -> dict[str, str]:
        """What the bundle's metrics.json records of them (`training` section)."""
        return {"mlflow_run": self.mlflow.link} if self.mlflow is not None else {}

    def finish(self, bundle: Path) -> None:
        """Attach the saved bundle and its export to the MLflow run, and end it."""
        if self.mlflow is not None:
            self.mlflow.finish(bundle)


def track_training(step: TrainingStep, kind: str, params: dict[str, Any], samples: Samples,
                   mlflow: str | None) -> Tracking:
    """TensorBoard events in `step.logs` and, with a tracking server, an MLflow run."""
    callbacks: list[keras.callbacks.Callback] = [TensorBoardLog(step.logs, samples)]
    uri = tracking_uri(mlflow)
    run = None
    if uri is not None:
        tags = {"ocr_pipeline.kind": kind, "ocr_pipeline.step_key": step.key,
                "prefect.flow_run_id": str(flow_run.id or ""),
                "prefect.flow_run_name": str(flow_run.name or "")}
        run = MlflowRun(uri, step.work, step.bundle.name, params, tags)
        callbacks.append(run)
    return Tracking(callbacks, run)
