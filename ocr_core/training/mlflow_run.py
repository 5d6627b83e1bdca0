"""One MLflow run per training, when a team has a tracking server (the `mlflow` extra).

`MlflowRun` is a Keras callback: the run starts with the training's parameters and tags (the
caller passes the Prefect flow run id: this library never imports Prefect), every epoch's
figures go in as metrics at step = epoch number, and `finish` attaches the saved bundle and its
SavedModel export as artifacts. The run's id is kept in the training's work folder, so a
training resumed after a kill goes on in the same run. It talks to the server through an
explicit `MlflowClient`, never MLflow's process-wide active run: trainings may run side by side
in one process.
"""

from __future__ import annotations

import logging
import numbers
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ocr_core.files import read_json, write_json
from ocr_core.training.mlflow_setup import run_link

EXPERIMENT = "ocr-pipeline"
RUN_FILE = "mlflow-run.json"
logger = logging.getLogger(__name__)


class MlflowRun(keras.callbacks.Callback):
    """Logs a training to MLflow: parameters and tags at the start, figures every epoch.

    Args:
        uri: the tracking server.
        work: the training's work folder, where the run id waits for a resume.
        name: the run's name (the bundle's folder name).
        params: the training's parameters.
        tags: e.g. the Prefect flow run id and the step key.
    """

    def __init__(self, uri: str, work: Path, name: str, params: dict[str, Any],
                 tags: dict[str, str]) -> None:
        super().__init__()
        from mlflow import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.work = Path(work)
        self.name, self.run_params, self.tags = name, params, tags  # Keras owns self.params
        self.run_id = ""
        self.experiment_id = ""

    @property
    def link(self) -> str:
        return run_link(self.uri, self.experiment_id, self.run_id)

    def on_train_begin(self, logs: dict | None = None) -> None:
        from mlflow.entities import Param, RunTag

        saved = self.work / RUN_FILE
        if saved.exists():  # a resumed training: the same run goes on
            found = read_json(saved)
            self.run_id, self.experiment_id = found["run_id"], found["experiment_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        self.experiment_id = (experiment.experiment_id if experiment is not None
                              else self.client.create_experiment(EXPERIMENT))
        run = self.client.create_run(self.experiment_id, tags=self.tags, run_name=self.name)
        self.run_id = run.info.run_id
        self.client.log_batch(self.run_id, params=[
            Param(key, str(value)[:6000]) for key, value in self.run_params.items()],
            tags=[RunTag("mlflow.note.content", f"ocr-pipeline training {self.name}")])
        write_json(saved, {"run_id": self.run_id, "experiment_id": self.experiment_id})
        logger.info("MLflow run %s", self.link)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, float(value), now, epoch + 1) for name, value in (logs or {}).items()
                   if isinstance(value, numbers.Number) or np.ndim(value) == 0]
        metrics.append(Metric("learning_rate", float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate)), now, epoch + 1))
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, bundle: Path) -> str:
        """Attach the bundle and its SavedModel export, end the run; returns its link.

        A failed export is logged as a warning: the training's result does not depend on it.
        """
        from ocr_core.export import export_bundle

        self.client.log_artifacts(self.run_id, str(bundle), artifact_path="bundle")
        with tempfile.TemporaryDirectory(prefix="ocr-mlflow-export-") as scratch:
            try:
                export = export_bundle(bundle, "saved_model", Path(scratch) / "saved_model")
            except Exception as error:  # any failure: the run still records the bundle
                logger.warning("MLflow run %s: no SavedModel attached (%s)", self.run_id, error)
            else:
                self.client.log_artifacts(self.run_id, str(export), artifact_path="saved_model")
        self.client.set_terminated(self.run_id, status="FINISHED")
        (self.work / RUN_FILE).unlink(missing_ok=True)
        return self.link
