"""Registry tasks with real bundles whose output is fixed by construction.

A "blank" model reads every captcha as "" (character error rate 1); a "2" model reads every
captcha as "2", so its error rate is below 1 whenever a label holds a 2. Both read no label
right, so their duel is the accuracy tie that the character error rate breaks.
"""

from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from ocr_core.captcha.inference import Prediction
from ocr_core.captcha.synthetic import generate_captchas
from ocr_core.data.dataset import ImageRecord, index_images, list_pngs, write_manifest
from ocr_core.errors import ConfigError
from ocr_core.registry import Registry
from tasks.decision_report import decision_markdown
from tasks.records import EvaluationReport, Manifest, ModelBundle, PromotionDecision
from tasks.registry import (
    challenge_champion,
    record_failed_challenger,
    register_model,
    reserve_evaluation_set,
    warn_small_evaluation_set,
)
from tests.bundles import constant_reader


def constant_bundle(folder: Path, favourite_class: int) -> ModelBundle:
    """A bundle whose logits always favour one class (0 = blank) at every time step."""
    constant_reader(folder, favourite_class, params={"favourite": favourite_class})
    return ModelBundle(str(folder), content_digest=f"constant-{favourite_class}", recipe="crnn")


def manifest_of(folder: Path, path: Path) -> Manifest:
    records = index_images(list_pngs(folder))
    digest = write_manifest(path, records)
    labels = "".join(r.label for r in records)
    return Manifest(str(path), content_digest=digest, count=len(records),
                    vocabulary="".join(sorted(set(labels))))


@pytest.fixture
def evaluation_set(captcha_dir, tmp_path) -> Manifest:
    return manifest_of(captcha_dir, tmp_path / "evaluation.json")


@pytest.fixture
def bundles(tmp_path) -> dict[str, ModelBundle]:
    return {"blank": constant_bundle(tmp_path / "models" / "blank", 0),
            "two": constant_bundle(tmp_path / "models" / "two", 1)}


def register(bundle: ModelBundle, results_dir: Path):
    with disable_run_logger():
        test = EvaluationReport(str(results_dir / "m.json"), content_digest="e", metrics={"count": 4})
        return register_model.fn(bundle, test, {"source": "synthetic", "images": 40, "seed": 1},
                                 {"seed": 1}, results_dir)


def challenge(challenger, evaluation_set: Manifest, results_dir: Path,
              margin: float = 0.0) -> PromotionDecision:
    with disable_run_logger():
        return challenge_champion.fn(challenger, evaluation_set, margin, "greedy", 16, results_dir)


def test_a_version_keeps_the_test_metrics_of_its_evaluation(bundles, tmp_path):
    version = Registry.of(tmp_path).version(register(bundles["two"], tmp_path).version)
    assert version.info["metrics"]["test"] == {"count": 4}


class TestChallengeChampion:
    def test_first_challenger_becomes_champion(self, bundles, evaluation_set, tmp_path):
        decision = challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)
        assert decision.promoted and decision.champion_after == "v1"
        assert decision.champion_scores is None
        assert decision.challenger_scores == {"sequence_accuracy": 0.0,
                                              "character_error_rate": 1.0, "count": 40}
        assert Registry.of(tmp_path).champion().name == "v1"

    def test_an_accuracy_tie_keeps_the_champion_despite_a_lower_error_rate(
        self, bundles, evaluation_set, tmp_path
    ):
        challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)
        decision = challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        assert not decision.promoted and decision.reason.startswith("no gain")
        assert decision.challenger_scores["character_error_rate"] < 1.0
        assert Registry.of(tmp_path).champion().name == "v1"

    def test_worse_challenger_never_replaces_the_champion(self, bundles, evaluation_set,
                                                          tmp_path):
        challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        decision = challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)
        assert not decision.promoted
        assert Registry.of(tmp_path).champion().name == "v1"
        logged = Registry.of(tmp_path).decisions()[-1]
        assert logged["challenger"] == "v2" and logged["champion_after"] == "v1"
        assert logged["challenger_scores"] == decision.challenger_scores

    def test_the_champion_as_its_own_challenger_is_kept(self, bundles, evaluation_set, tmp_path):
        challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        decision = challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        assert not decision.promoted
        assert "the challenger is the champion v1" in decision.reason
        assert [v.name for v in Registry.of(tmp_path).versions()] == ["v1"]

    def test_a_champion_is_scored_once_per_evaluation_set(self, bundles, evaluation_set,
                                                          tmp_path, monkeypatch):
        from ocr_core.captcha import inference

        challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        scored = []
        original = inference.predict_files

        def spy(bundle, paths, **kwargs):
            scored.append(bundle.path.name)
            return original(bundle, paths, **kwargs)

        monkeypatch.setattr(inference, "predict_files", spy)
        challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)
        assert scored == ["v2"]  # the champion's scores came from the registry


def hundred_image_set(tmp_path: Path) -> Manifest:
    """An evaluation manifest of 100 images "00000" ... "00099" (read by `fake_readers`)."""
    records = [ImageRecord(f"/evaluation/{i:05d}.png", f"{i:05d}", f"{i:064x}")
               for i in range(100)]
    digest = write_manifest(tmp_path / "hundred.json", records)
    Registry.of(tmp_path).reserve_evaluation_set(digest, 100, {"folder": "/evaluation"})
    return Manifest(str(tmp_path / "hundred.json"), content_digest=digest, count=100,
                    vocabulary="0123456789")


def fake_readers(monkeypatch, right: dict[str, int]) -> None:
    """Version vN reads the first right["vN"] images of the set right and the others wrong."""
    from ocr_core.captcha import inference

    def predict(bundle, paths, **kwargs):
        known = right[bundle.path.name]
        return [Prediction(str(p), Path(p).stem if i < known else "?", 1.0)
                for i, p in enumerate(paths)]

    monkeypatch.setattr(inference, "predict_files", predict)


class TestPairedGate:
    def test_one_image_on_100_keeps_the_champion_a_clear_gain_promotes(
        self, bundles, tmp_path, monkeypatch
    ):
        evaluation_set = hundred_image_set(tmp_path)
        fake_readers(monkeypatch, {"v1": 78, "v2": 79, "v3": 90})
        challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path, margin=0.01)

        close = challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path,
                          margin=0.01)
        assert not close.promoted and close.champion_after == "v1"
        assert close.comparison == {"count": 100, "challenger_only": 1, "champion_only": 0,
                                    "p_value": 0.5, "significance": 0.05,
                                    "test": "one-sided exact McNemar"}
        assert "not significantly (p = 0.5000 > 0.05)" in close.reason
        logged = Registry.of(tmp_path).decisions()[-1]
        assert logged["comparison"] == close.comparison
        assert (logged["margin"], logged["significance"]) == (0.01, 0.05)
        assert logged["evaluation_set"]["digest"] == evaluation_set.content_digest
        assert "images" not in logged["evaluation_set"]
        assert logged["evaluation_set_uses"] == 2

        third = constant_bundle(tmp_path / "models" / "three", 2)
        clear = challenge(register(third, tmp_path), evaluation_set, tmp_path, margin=0.01)
        assert clear.promoted and clear.champion_after == "v3"
        assert clear.comparison["challenger_only"] == 12
        assert clear.comparison["p_value"] == 0.5 ** 12
        assert clear.evaluation_set_uses == 3
        text = decision_markdown(clear)
        assert "n = 100, 12 images only the challenger reads right, 0 only the champion" in text
        assert "p = 0.0002" in text and "decisions that have used it: 3" in text
        assert "90.0% (90/100, 82.6-94.5%)" in text

    def test_a_stricter_significance_keeps_what_the_default_promotes(
        self, bundles, tmp_path, monkeypatch
    ):
        evaluation_set = hundred_image_set(tmp_path)
        fake_readers(monkeypatch, {"v1": 78, "v2": 84})  # 6 wins, no loss: p = 1/64
        challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)
        challenger = register(bundles["two"], tmp_path)
        with disable_run_logger():
            strict = challenge_champion.fn(challenger, evaluation_set, 0.01, "greedy", 16,
                                           tmp_path, significance=0.01)
        assert not strict.promoted and strict.comparison["p_value"] == 1 / 64


class TestSmallEvaluationSet:
    def test_a_set_too_small_for_the_margin_is_a_warning_naming_the_size(self, evaluation_set):
        with disable_run_logger():
            warning = warn_small_evaluation_set.fn(evaluation_set, 0.01, 0.05)
            assert "at least 401 images" in warning and "40 images" in warning
            big = Manifest("x", content_digest="d", count=500)
            assert warn_small_evaluation_set.fn(big, 0.01, 0.05) is None


class TestScoringWithoutTheLock:
    def test_the_registry_is_not_locked_while_models_are_scored(
        self, bundles, evaluation_set, tmp_path, monkeypatch
    ):
        from ocr_core.captcha import inference

        challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        original = inference.predict_files
        free = []

        def scoring(bundle, paths, **kwargs):
            with Registry.of(tmp_path).lock(timeout=0.5):  # another process could write now
                free.append(bundle.path.name)
            return original(bundle, paths, **kwargs)

        monkeypatch.setattr(inference, "predict_files", scoring)
        decision = challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)
        assert free == ["v2"] and not decision.promoted

    def test_a_champion_moved_while_scoring_is_the_one_compared(
        self, bundles, evaluation_set, tmp_path, monkeypatch
    ):
        from ocr_core.captcha import inference

        registry = Registry.of(tmp_path)
        challenge(register(bundles["blank"], tmp_path), evaluation_set, tmp_path)  # v1
        strong = register(bundles["two"], tmp_path)  # v2, registered but not champion
        third = constant_bundle(tmp_path / "models" / "three", 2)
        original = inference.predict_files

        def scoring(bundle, paths, **kwargs):
            if registry.champion().name == "v1":  # another run promotes v2 meanwhile
                registry.set_champion(registry.version("v2"), "another run")
            return original(bundle, paths, **kwargs)

        monkeypatch.setattr(inference, "predict_files", scoring)
        decision = challenge(register(third, tmp_path), evaluation_set, tmp_path)
        assert strong.version == "v2" and decision.champion_before == "v2"


class TestFailedChallenger:
    def test_a_failed_run_is_logged_and_the_champion_stays(self, bundles, evaluation_set,
                                                          tmp_path):
        challenge(register(bundles["two"], tmp_path), evaluation_set, tmp_path)
        with disable_run_logger():
            decision = record_failed_challenger.fn("DataError: no .png files in /data", 0.01,
                                                   tmp_path)
        assert not decision.promoted
        assert decision.champion_after == "v1"
        assert "DataError: no .png files" in decision.reason
        assert Registry.of(tmp_path).champion().name == "v1"
        assert Registry.of(tmp_path).decisions()[-1]["reason"] == decision.reason


class TestReserveEvaluationSet:
    def test_training_images_in_the_evaluation_set_are_refused(self, captcha_dir, tmp_path,
                                                               evaluation_set):
        with disable_run_logger(), pytest.raises(ConfigError, match="40 of the 40 evaluation"):
            reserve_evaluation_set.fn(evaluation_set, evaluation_set, {}, tmp_path)
        assert Registry.of(tmp_path).evaluation_set() is None

    def test_the_registry_keeps_comparing_on_its_first_set(self, tmp_path, evaluation_set):
        generate_captchas(tmp_path / "train", 10, seed=8)
        generate_captchas(tmp_path / "other", 10, seed=9)
        training = manifest_of(tmp_path / "train", tmp_path / "train.json")
        other = manifest_of(tmp_path / "other", tmp_path / "other.json")
        with disable_run_logger():
            assert reserve_evaluation_set.fn(evaluation_set, training, {"seed": 7}, tmp_path) \
                == evaluation_set
            with pytest.raises(ConfigError, match="compares models on 40 images"):
                reserve_evaluation_set.fn(other, training, {"seed": 9}, tmp_path)


class TestDecisionMarkdown:
    def test_shows_both_rows_the_outcome_and_the_reason(self):
        decision = PromotionDecision(
            "/r/decisions/000002.json", content_digest="x", promoted=False, reason="worse: 0.5 vs 0.7",
            challenger="v2", champion_before="v1", champion_after="v1", margin=0.01,
            challenger_scores={"sequence_accuracy": 0.5, "character_error_rate": 0.2,
                               "count": 20},
            champion_scores={"sequence_accuracy": 0.7, "character_error_rate": 0.1, "count": 20},
            evaluation_set={"digest": "a" * 64, "count": 20,
                            "description": {"generated with seed": 2024}},
            registry="/r")
        text = decision_markdown(decision)
        assert "v1 stays champion" in text
        assert "| challenger | v2 | 50.0% (10/20, 29.9-70.1%) | 0.2000 |" in text
        assert "| champion | v1 | 70.0% (14/20, 48.1-85.5%) | 0.1000 |" in text
        assert "**Why:** worse: 0.5 vs 0.7" in text
        assert "generated with seed 2024" in text
