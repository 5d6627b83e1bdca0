"""Whether and where trainings are tracked in MLflow, without importing MLflow or Keras: the
parameter models check `--mlflow` with it before anything heavy loads."""

from __future__ import annotations

import logging
import os

from ocr_core.errors import ConfigError

TRACKING_ENV = "MLFLOW_TRACKING_URI"
EXTRA = "pip install 'ocr-pipeline[mlflow]'"
logger = logging.getLogger(__name__)


def mlflow_installed() -> bool:
    """Whether MLflow's client can be imported here."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def check_mlflow_installed() -> None:
    """Raise ConfigError saying how to install MLflow when it is not installed."""
    if not mlflow_installed():
        raise ConfigError(f"MLflow is not installed: {EXTRA}")


def tracking_uri(given: str | None) -> str | None:
    """The tracking server to log to: `given` (--mlflow), else $MLFLOW_TRACKING_URI, else None.

    A server named only by the environment is skipped, with a warning, where MLflow is not
    installed: the variable may be there for other tools.
    """
    if given:
        check_mlflow_installed()
        return given
    from_environment = os.environ.get(TRACKING_ENV) or None
    if from_environment and not mlflow_installed():
        logger.warning("%s is set but MLflow is not installed (%s): not logging to it",
                       TRACKING_ENV, EXTRA)
        return None
    return from_environment


def run_link(uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page on an HTTP tracking server, else `runs:/<id>` (MLflow's own reference)."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"runs:/{run_id}"
