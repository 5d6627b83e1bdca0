"""The retrain flow end to end on tiny data: promotion, cache-hit reruns, a failed challenger."""

import json
from pathlib import Path
from uuid import UUID

import pytest

from ocr_core.config import RetrainParams
from ocr_core.registry import Registry, Scores, decide

pytestmark = pytest.mark.slow


def tiny(results_dir, **overrides) -> RetrainParams:
    values = {"results_dir": results_dir, "num_samples": 40, "epochs": 1,
              "evaluation_samples": 20, "min_val_accuracy": 0} | overrides
    return RetrainParams(**values)


def artifacts_of(flow_run_id: UUID) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {artifact.key: artifact for artifact in found}


def test_retraining_promotes_keeps_and_survives_a_failed_challenger(
    prefect_server, results_dir, tmp_path
):
    from flows.retrain import captcha_retrain

    registry = Registry.of(results_dir)

    state = captcha_retrain(tiny(results_dir), return_state=True)
    first = state.result()
    assert first.promoted and first.challenger == first.champion == "v1"
    assert registry.champion().name == "v1"
    assert registry.evaluation_set()["count"] == 20
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert {"captcha-metrics", "captcha-predictions", "captcha-promotion",
            "captcha-history-plot", "captcha-predictions-plot"} <= set(artifacts)
    assert "v1 promoted to champion" in artifacts["captcha-promotion"].data
    rows = json.loads(artifacts["captcha-predictions"].data)
    assert {"image", "truth", "prediction", "correct"} <= set(rows[0])
    link = artifacts["captcha-history-plot"].data  # "[Loss curves](file:///.../history-....png)"
    assert Path(link.split("(file://", 1)[1].rstrip(")")).is_file()

    # Same data, parameters and code: a cache hit, and the champion meets itself.
    again = captcha_retrain(tiny(results_dir))
    assert not again.promoted and "the challenger is the champion v1" in again.reason
    assert [v.name for v in registry.versions()] == ["v1"]

    # New data (another seed): a real duel on the evaluation set, decided by the rule.
    duel = captcha_retrain(tiny(results_dir, seed=7, promotion_margin=0.0))
    assert duel.challenger == "v2"
    expected = decide(Scores(**duel.challenger_scores), Scores(**duel.champion_scores), 0.0)
    assert duel.promoted == expected.promote
    assert registry.champion().name == ("v2" if expected.promote else "v1")
    champion = registry.champion().name

    # A challenger that fails leaves the champion and logs why.
    (tmp_path / "empty").mkdir()
    failed = captcha_retrain(tiny(results_dir, source="dir", num_samples=None,
                                  data_dir=tmp_path / "empty", evaluation_dir=tmp_path / "x"),
                             return_state=True)
    assert failed.is_failed()
    assert registry.champion().name == champion
    last = registry.decisions()[-1]
    assert not last["promoted"] and "DataError" in last["reason"]
    assert "stays champion" in artifacts_of(failed.state_details.flow_run_id)[
        "captcha-promotion"].data

    # A challenger that learned nothing (the guard at its default, 0.5) is never registered.
    hopeless = captcha_retrain(tiny(results_dir, seed=11, min_val_accuracy=0.5),
                               return_state=True)
    assert hopeless.is_failed()
    assert registry.champion().name == champion
    assert len(registry.versions()) == (2 if duel.challenger == "v2" else 1)
    last = registry.decisions()[-1]
    assert not last["promoted"] and "TrainingError: the model did not learn" in last["reason"]
