"""`ocr-pipeline models list|show|promote` and `predict` with the champion, through click's runner."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import main
from ocr_core.errors import RegistryError
from ocr_core.registry import Registry
from tests.bundles import constant_reader


def two_reader(folder: Path) -> Path:
    """A real bundle that reads every captcha as "2" (its logits always favour class 1)."""
    return constant_reader(folder, 1, params={"seed": 3}, metrics={
        "test": {"sequence_accuracy": 0.25, "character_error_rate": 0.5, "count": 4}})


@pytest.fixture
def registry(tmp_path) -> Registry:
    """A registry with v1 (champion, scored) and v2."""
    registry = Registry.of(tmp_path / "results")
    for name, seed in (("a", 3), ("b", 4)):
        bundle = two_reader(tmp_path / name)
        (bundle / "history.json").write_text(json.dumps({"seed": seed}))  # distinct content
        registry.register(bundle, training_data={"source": "synthetic", "images": 40,
                                                 "seed": seed, "manifest_digest": "f" * 64},
                          params={"seed": seed, "num_samples": 40})
    registry.reserve_evaluation_set("e" * 64, 20, {"generated with seed": 2024})
    registry.record_scores(registry.version("v1"), "key", {
        "sequence_accuracy": 0.5, "character_error_rate": 0.125, "count": 20,
        "evaluation_set": "e" * 64, "decoder": "greedy", "beam_width": 16})
    registry.set_champion(registry.version("v1"), "first model")
    registry.record_decision({"promoted": True, "reason": "first model", "challenger": "v1",
                              "champion_before": None, "champion_after": "v1"})
    return registry


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def results_of(registry: Registry) -> str:
    return registry.root.url


def test_retrain_takes_the_significance_level():
    result = run("retrain", "--help")
    assert result.exit_code == 0 and "--significance" in result.output
    result = run("retrain", "--significance", "1.5")
    assert result.exit_code == 2 and "--significance" in result.output


class TestModelsList:
    def test_marks_the_champion_and_shows_data_and_scores(self, registry):
        result = run("models", "list", "--results-dir", results_of(registry))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[1].startswith("*") and "v1" in lines[1]
        assert "50.0% (10/20, 29.9-70.1%)" in lines[1]
        assert "synthetic, 40 captchas, seed 3" in lines[1]
        assert "v2" in lines[2] and not lines[2].startswith("*")

    def test_json(self, registry):
        result = run("models", "list", "--results-dir", results_of(registry), "--json")
        rows = json.loads(result.output)
        assert [(r["version"], r["champion"]) for r in rows] == [("v1", True), ("v2", False)]
        assert rows[0]["evaluation"]["character_error_rate"] == 0.125

    def test_an_empty_registry_says_how_to_fill_it(self, tmp_path):
        result = run("models", "list", "--results-dir", str(tmp_path))
        assert result.exit_code == 0 and "ocr-pipeline retrain" in result.output


class TestModelsShow:
    def test_shows_the_champion_by_default(self, registry):
        result = run("models", "show", "--results-dir", results_of(registry))
        assert result.exit_code == 0, result.output
        assert result.output.startswith("v1  (champion)")
        assert "trained on:       synthetic, 40 captchas, seed 3" in result.output
        assert "vocabulary '2345678bcdefgmnpwxy'" in result.output
        assert "test split:       sequence accuracy 25.0% (1/4, 4.6-69.9%)" in result.output
        assert "evaluation set:   sequence accuracy 50.0% (10/20, 29.9-70.1%)" in result.output
        assert "promoted: first model" in result.output

    def test_reads_a_version_registered_from_a_format_1_bundle(self, registry):
        from ocr_core.files import read_json, write_json

        record = registry.root.local / "registry" / "versions" / "v1" / "version.json"
        info = read_json(record)
        old = {"format": 1} | {k: v for k, v in info["bundle"].items()
                               if k not in ("format_version", "kind", "training_data_sha256")}
        write_json(record, info | {"bundle": old | {"training_manifest_sha256": "9" * 64}})
        result = run("models", "show", "--results-dir", results_of(registry))
        assert result.exit_code == 0, result.output
        assert "training data:    split manifest 9999999999999999," in result.output

    def test_shows_the_paired_test_of_each_decision(self, registry):
        registry.record_decision({
            "promoted": False, "reason": "gains 3 images, but not significantly",
            "challenger": "v2", "champion_before": "v1", "champion_after": "v1",
            "margin": 0.01, "significance": 0.05,
            "comparison": {"count": 20, "challenger_only": 3, "champion_only": 0,
                           "p_value": 0.125, "significance": 0.05,
                           "test": "one-sided exact McNemar"},
            "evaluation_set": {"digest": "e" * 64, "count": 20}, "evaluation_set_uses": 2})
        result = run("models", "show", "--results-dir", results_of(registry), "v2")
        assert result.exit_code == 0, result.output
        assert ("paired test: n = 20, 3 images only the challenger reads right, 0 only the "
                "champion, p = 0.1250 (margin 0.01, significance 0.05); evaluation set "
                "eeeeeeeeeeee, used by 2 decisions") in result.output

    def test_unknown_version_is_a_one_line_error(self, registry):
        result = run("models", "show", "--results-dir", results_of(registry), "v7")
        assert result.exit_code == 5
        assert result.output.strip() == (f"Error: no version v7 in registry {registry.location} "
                                         "(versions: v1, v2)")


class TestModelsPromote:
    def test_rollback_by_hand_is_logged(self, registry):
        result = run("models", "promote", "--results-dir", results_of(registry), "2",
                     "--reason", "roll back")
        assert result.exit_code == 0 and "champion: v2 (was v1)" in result.output
        serving = registry.root.local / "registry" / "serving" / "crnn" / "2"
        assert f"serving:  {serving}" in result.output
        assert (serving / "saved_model.pb").is_file()
        assert registry.champion().name == "v2"
        assert registry.decisions()[-1] | {"decided": None} == {
            "decided": None, "promoted": True, "reason": "roll back", "challenger": "v2",
            "manual": True, "champion_before": "v1", "champion_after": "v2",
            "serving": {"exported": True, "path": str(serving), "serving": "v2"}}


class TestPredictWithTheChampion:
    def test_uses_the_champion_without_model(self, registry, captcha_dir):
        result = CliRunner().invoke(main, ["predict", "--results-dir", results_of(registry),
                                           "--format", "json", str(captcha_dir)])
        assert result.exit_code == 0, result.output
        version = registry.root.local / "registry" / "versions" / "v1"
        assert f"using the champion v1 ({version})" in result.stderr
        predictions = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(predictions) == 40 and {p["text"] for p in predictions} == {"2"}

    def test_an_edited_champion_file_is_refused_naming_the_file(self, registry, captcha_dir):
        model_file = registry.root.local / "registry" / "versions" / "v1" / "model.keras"
        with open(model_file, "ab") as edited:
            edited.write(b"\0")
        result = run("predict", "--results-dir", results_of(registry), str(captcha_dir))
        assert result.exit_code == 5
        assert result.output.strip() == (
            f"Error: registered v1 changed since registration: {model_file} differs from its "
            f"recorded sha256 {registry.version('v1').info['files']['model.keras'][:12]}; "
            "restore it or register the model again")

    def test_the_predict_flow_refuses_an_edited_champion_too(self, registry):
        from prefect.logging import disable_run_logger

        from ocr_core.errors import RegistryError
        from tasks.predict import choose_model

        (registry.root.local / "registry" / "versions" / "v1" / "bundle.json").write_text("{}")
        with disable_run_logger(), pytest.raises(RegistryError, match=r"v1/bundle\.json differs"):
            choose_model.fn(None, registry.root.url)

    def test_editing_the_cache_leaves_the_registered_champion_intact(self, registry, tmp_path,
                                                                    captcha_dir):
        with open(tmp_path / "a" / "model.keras", "ab") as cache_file:  # the bundle registered
            cache_file.write(b"\0")
        result = CliRunner().invoke(main, ["predict", "--results-dir", results_of(registry),
                                           str(captcha_dir)])
        assert result.exit_code == 0, result.output

    def test_no_champion_is_a_clear_error(self, tmp_path, captcha_dir):
        result = run("predict", "--results-dir", str(tmp_path), str(captcha_dir))
        assert result.exit_code == 5
        assert "no --model given and no champion" in result.output


def test_the_registry_on_a_store(s3_root, tmp_path, captcha_dir):
    registry = Registry.of(s3_root)
    version = registry.register(two_reader(tmp_path / "a"), training_data={"source": "synthetic"},
                                params={})
    registry.set_champion(version, "first model", replacing=None)
    listed = run("models", "list", "--results-dir", s3_root)
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[1].startswith("*") and "v1" in listed.output
    shown = run("models", "show", "--results-dir", s3_root, "--json")
    assert json.loads(shown.output)["path"] == f"{s3_root}/registry/versions/v1"
    read = CliRunner().invoke(main, ["predict", "--results-dir", s3_root, str(captcha_dir)])
    assert read.exit_code == 0, read.output
    assert f"using the champion v1 ({s3_root}/registry/versions/v1)" in read.stderr
    with pytest.raises(RegistryError, match="moved"):  # a pointer moved from a stale read
        registry.set_champion(version, "again", replacing=None)
