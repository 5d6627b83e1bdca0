"""The one per-epoch progress artifact both training tasks show in the UI."""

import keras
import numpy as np
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from tasks.progress import epoch_progress


@task
def _train_tiny(epochs: int) -> int:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callbacks = epoch_progress("tiny-training", epochs, "tiny: epochs done (%)")
    model.fit(np.ones((4, 2)), np.zeros((4, 1)), epochs=epochs, verbose=0, callbacks=callbacks)
    return len(callbacks)


@flow
def _tiny_training(epochs: int) -> int:
    return _train_tiny(epochs)


@pytest.mark.slow
def test_a_task_run_shows_its_epochs_done(prefect_server):
    assert _tiny_training(4) == 1
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["tiny-training"])))
    assert [(a.type, a.data, a.description) for a in artifacts] == [
        ("progress", 100.0, "tiny: epochs done (%)")]


def test_a_direct_call_has_no_run_to_show_it_in():
    assert epoch_progress("tiny-training", 4, "tiny") == []
