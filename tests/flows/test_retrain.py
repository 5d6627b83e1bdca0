"""The retrain flow end to end on tiny data: promotion, cache-hit reruns, a failed challenger."""

import json
import shutil
from pathlib import Path
from uuid import UUID

import pytest

from ocr_core.config import RetrainParams
from ocr_core.registry import Registry
from ocr_core.statistics import mcnemar_one_sided

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

    # Same data, parameters and code: a cache hit, and the champion meets itself, also when
    # the manifests are gone (they are written again, and the model is found in the cache).
    shutil.rmtree(results_dir / "manifests")
    again = captcha_retrain(tiny(results_dir))
    assert (results_dir / "manifests").is_dir()
    assert not again.promoted and "the challenger is the champion v1" in again.reason
    assert [v.name for v in registry.versions()] == ["v1"]

    # New data (another seed): a real duel on the evaluation set, decided by the rule.
    duel = captcha_retrain(tiny(results_dir, seed=7, promotion_margin=0.0))
    assert duel.challenger == "v2"
    test = duel.comparison
    assert test["count"] == 20 and test["test"] == "one-sided exact McNemar"
    assert test["p_value"] == mcnemar_one_sided(test["challenger_only"], test["champion_only"])
    assert duel.promoted == (test["challenger_only"] > test["champion_only"]
                             and test["p_value"] <= 0.05)
    assert registry.champion().name == ("v2" if duel.promoted else "v1")
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


def split_manifests(results_dir: Path) -> set[Path]:
    return set((results_dir / "manifests").glob("split-*.json"))


def test_images_keep_their_split_when_the_dataset_grows(prefect_server, results_dir, tmp_path):
    """Through the CLI: train, add 25% more images, retrain: every earlier test image is still
    in test, and the run says how many images joined each split."""
    from click.testing import CliRunner

    from flows.cli import main
    from ocr_core.captcha.synthetic import generate_captchas

    data, extra, evaluation = tmp_path / "data", tmp_path / "extra", tmp_path / "evaluation"
    generate_captchas(data, 80, seed=3)
    generate_captchas(extra, 20, seed=4)
    generate_captchas(evaluation, 20, seed=5)
    command = ["retrain", "--source", "dir", "--data-dir", str(data), "--evaluation-dir",
               str(evaluation), "--epochs", "1", "--min-val-accuracy", "0", "--results-dir",
               str(results_dir)]

    first = CliRunner().invoke(main, command)
    assert first.exit_code == 0, first.output
    assert "Warning: the evaluation set has 20 images" in first.stderr
    assert "at least 401 images" in first.stderr
    (before,) = split_manifests(results_dir)
    earlier = json.loads(before.read_text())
    assert earlier["rule"].startswith("content-hash")

    added = [path for path in extra.glob("*.png") if not (data / path.name).exists()]
    for path in added:
        shutil.copy(path, data)
    second = CliRunner().invoke(main, command)
    assert second.exit_code == 0, second.output
    (after,) = split_manifests(results_dir) - {before}
    later = json.loads(after.read_text())
    for name in ("train", "validation", "test"):
        assert {r["sha256"] for r in earlier[name]} <= {r["sha256"] for r in later[name]}, name

    changes = Registry.of(results_dir).version("v2").info["training_data"]["split_changes"]
    assert sum(change["joined"] for change in changes.values()) == len(added)
    assert all(change["moved_in"] == 0 for change in changes.values())
    assert "new data:   " + ", ".join(f"{changes[n]['joined']} joined {n}" for n in
                                      ("train", "validation", "test")) in second.output
