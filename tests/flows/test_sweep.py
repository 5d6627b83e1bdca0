"""The sweep flow on threads: one training task run per configuration, a failed configuration
reported (not dropped), the comparison artifact and the registry's decision on the best."""

import asyncio
import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)

from ocr_core.config import SweepParams
from ocr_core.errors import TrainingError
from ocr_core.registry import Registry

pytestmark = pytest.mark.slow


async def _runs_and_artifacts(flow_run_id):
    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return runs, {a.key: a for a in artifacts}


def test_sweep_trains_each_configuration_and_gates_the_best(prefect_server, results_dir,
                                                             monkeypatch):
    from flows.sweep import captcha_sweep
    from ocr_core.captcha import training

    real_fit = training.train_captcha_model

    def fit_failing_seed_2_at_the_high_rate(*args, **kwargs):
        if kwargs["seed"] == 2 and kwargs["learning_rate"] == 0.003:
            raise TrainingError("diverged (made to fail by the test)")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "train_captcha_model", fit_failing_seed_2_at_the_high_rate)
    params = SweepParams(results_dir=results_dir, num_samples=40, epochs=1, batch_size=8,
                         evaluation_samples=20, min_val_accuracy=0, seeds=[1, 2],
                         learning_rates=[0.001, 0.003], max_workers=2)
    state = captcha_sweep(params, return_state=True)
    assert state.is_completed(), state
    summary = state.result()

    assert [row["configuration"] for row in summary.rows] == [
        "crnn lr=0.001 seed=1", "crnn lr=0.001 seed=2", "crnn lr=0.003 seed=1",
        "crnn lr=0.003 seed=2"]
    assert summary.failed == ["crnn lr=0.003 seed=2"]
    failed = summary.rows[3]
    assert failed["status"] == "failed" and "diverged" in failed["error"]
    assert [row["status"] for row in summary.rows].count("best") == 1
    best = next(row for row in summary.rows if row["status"] == "best")
    assert best["configuration"] == summary.best
    ok = [row for row in summary.rows if row["status"] != "failed"]
    assert all(0 <= row["test sequence accuracy"] <= 1 and row["worker"] for row in ok)
    assert len({row["model"] for row in ok}) == 3  # one model per configuration

    runs, artifacts = asyncio.run(_runs_and_artifacts(state.state_details.flow_run_id))
    trainings = [run for run in runs if run.name.startswith("train_model")]
    assert sorted(run.state.name for run in trainings) == ["Completed"] * 3 + ["Failed"]
    # max_workers=2: two trainings at once at some point, never three (the check and evaluation
    # tasks waiting on a training do not hold back the next one).
    at_once = [sum(other.start_time <= run.start_time < other.end_time for other in trainings)
               for run in trainings]
    assert max(at_once) == 2, at_once
    assert len([r for r in runs if r.name.startswith("build_datasets")]) == 1  # data once
    table = json.loads(artifacts["captcha-sweep"].data)
    assert "chosen on validation figures only" in artifacts["captcha-sweep"].description
    assert "test figures are shown for every configuration but never choose" in (
        artifacts["captcha-sweep"].description)
    assert best["val sequence accuracy"] == max(row["val sequence accuracy"] for row in ok)
    assert [row["configuration"] for row in table] == [row["configuration"] for row in summary.rows]
    assert "captcha-promotion" in artifacts

    registry = Registry.of(results_dir)
    assert len(registry.versions()) == len(ok)  # every model trained is registered
    version = registry.version(summary.challenger)
    assert summary.promoted  # first model: promoted
    params_used = version.info["params"]
    assert f"lr={params_used['learning_rate']:g} seed={params_used['training_seed']}" in summary.best
    assert registry.decisions()[-1]["challenger"] == version.name
