"""The command line through click's runner: one-line errors with exit codes, and the happy paths."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flows.cli import main
from ocr_core.bundle.folder import captcha_fields, save_bundle
from ocr_core.captcha.models import get_recipe


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def untrained_bundle(tmp_path_factory):
    recipe = get_recipe("crnn")
    path = tmp_path_factory.mktemp("bundle") / "model"
    save_bundle(path, recipe.build_model(20),
                captcha_fields("2345678bcdefgmnpwxy", recipe.height, recipe.width), recipe="crnn",
                training_data_sha256="0", params={}, history={})
    return path


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    return lines[-1]


class TestCaptchaFlags:
    def test_help_shows_parameter_descriptions(self, runner):
        result = runner.invoke(main, ["captcha", "--help"])
        assert result.exit_code == 0
        for flag in ("--source [synthetic|url|dir]", "--num-samples", "--epochs", "--recipe",
                     "--results-dir", "--seed", "--batch-size", "--patience"):
            assert flag in result.output
        assert "Captchas to generate" in result.output

    def test_num_samples_with_another_source(self, runner, tmp_path):
        result = runner.invoke(main, ["captcha", "--source", "dir", "--data-dir", str(tmp_path),
                                      "--num-samples", "50"])
        assert result.exit_code == 2
        assert "num_samples belongs to the synthetic source" in _one_line_error(result)

    def test_out_of_range_value_names_the_flag(self, runner):
        result = runner.invoke(main, ["captcha", "--epochs", "0"])
        assert result.exit_code == 2
        assert "--epochs" in _one_line_error(result)

    def test_unknown_recipe(self, runner):
        result = runner.invoke(main, ["captcha", "--recipe", "resnet"])
        assert result.exit_code == 2
        assert "'resnet' is not allowed: input should be 'crnn' or 'keras_example'" in _one_line_error(result)


class TestPredict:
    def test_prints_path_tab_text(self, runner, untrained_bundle, captcha_dir):
        images = sorted(captcha_dir.glob("*.png"))[:3]
        result = runner.invoke(main, ["predict", "--model", str(untrained_bundle),
                                      *map(str, images)])
        assert result.exit_code == 0, result.output
        lines = result.output.strip().splitlines()
        assert [line.split("\t")[0] for line in lines] == [str(p) for p in images]

    def test_json_has_confidence(self, runner, untrained_bundle, captcha_dir):
        result = runner.invoke(main, ["predict", "--format", "json", "--model",
                                      str(untrained_bundle / "model.keras"), str(captcha_dir)])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.output.strip().splitlines()]
        assert len(rows) == 40
        assert all(set(row) == {"path", "text", "confidence"} for row in rows)

    def test_missing_image(self, runner, untrained_bundle, tmp_path):
        result = runner.invoke(main, ["predict", "--model", str(untrained_bundle),
                                      str(tmp_path / "gone.png")])
        assert result.exit_code == 3
        assert "no such file or folder" in _one_line_error(result)

    def test_not_a_png(self, runner, untrained_bundle, tmp_path):
        text = tmp_path / "note.png"
        text.write_text("not an image")
        result = runner.invoke(main, ["predict", "--model", str(untrained_bundle), str(text)])
        assert result.exit_code == 3
        assert f"not a PNG file: {text}" in _one_line_error(result)

    def test_unknown_model_path(self, runner, captcha_dir, tmp_path):
        result = runner.invoke(main, ["predict", "--model", str(tmp_path / "nomodel"),
                                      str(captcha_dir)])
        assert result.exit_code == 4
        assert "no model at" in _one_line_error(result)

    def test_a_digits_bundle_is_refused_naming_folder_and_kind(self, runner, captcha_dir,
                                                               tmp_path):
        from ocr_core.errors import ModelError
        from ocr_core.mnist.models import build_model, bundle_fields
        from tasks.predict import choose_model

        digits = save_bundle(tmp_path / "mnist-dense", build_model("dense"),
                             bundle_fields("dense"), recipe="dense", training_data_sha256="0",
                             params={}, history={})
        result = runner.invoke(main, ["predict", "--model", str(digits), str(captcha_dir)])
        assert result.exit_code == 4
        assert _one_line_error(result) == (f"Error: {digits} holds a digits model; this needs a "
                                           "captcha model")
        with pytest.raises(ModelError, match="holds a digits model; this needs a captcha model"):
            choose_model.fn(digits, tmp_path)  # the flow that writes a results file


class TestGenerateAndEvaluate:
    def test_generate_then_evaluate(self, runner, untrained_bundle, tmp_path):
        out = tmp_path / "eval"
        result = runner.invoke(main, ["generate", "--count", "6", "--seed", "5", str(out)])
        assert result.exit_code == 0, result.output
        assert len(list(out.glob("*.png"))) == 6

        result = runner.invoke(main, ["evaluate", "--json", "--model", str(untrained_bundle),
                                      str(out)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["seen_in_training"] is None
        assert result.stderr == (f"note: {untrained_bundle} does not record its training images "
                                 "(an older bundle): whether they overlap these images cannot be "
                                 "checked\n")
        assert report["count"] == 6
        assert len(report["misreads"]) == round(6 * (1 - report["sequence_accuracy"]))
        low, high = report["sequence_accuracy_interval_95"]
        assert low <= report["sequence_accuracy"] <= high and high - low > 0.3  # 6 images

        result = runner.invoke(main, ["evaluate", "--model", str(untrained_bundle), str(out)])
        right = 6 - len(report["misreads"])
        assert f"sequence accuracy:    {100 * right / 6:.1f}% ({right}/6, " in result.output

    def test_evaluate_warns_about_images_the_model_was_trained_on(self, runner, captcha_dir,
                                                                  tmp_path):
        from ocr_core.files import sha256_file

        trained_on = sorted(captcha_dir.glob("*.png"))[:30]
        recipe = get_recipe("crnn")
        model = save_bundle(
            tmp_path / "model", recipe.build_model(20),
            captcha_fields("2345678bcdefgmnpwxy", recipe.height, recipe.width), recipe="crnn",
            training_data_sha256="0", params={}, history={},
            training_images=[sha256_file(p) for p in trained_on])
        folder = tmp_path / "mixed"
        folder.mkdir()
        for path in sorted(captcha_dir.glob("*.png"))[26:34]:  # 4 seen in training, 4 not
            (folder / path.name).write_bytes(path.read_bytes())
        result = runner.invoke(main, ["evaluate", "--json", "--model", str(model), str(folder)])
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith(f"warning: 4 of 8 images are images {model} was trained "
                                        "or validated on (same bytes")
        seen = json.loads(result.stdout)["seen_in_training"]
        assert sorted(seen) == sorted(str(folder / p.name) for p in trained_on[26:])

        fresh = tmp_path / "fresh"
        result = runner.invoke(main, ["generate", "--count", "8", str(fresh)])
        result = runner.invoke(main, ["evaluate", "--model", str(model), str(fresh)])
        assert result.exit_code == 0 and result.stderr == ""

    def test_generate_draws_a_fresh_seed_never_the_evaluation_or_training_one(self, runner,
                                                                             tmp_path):
        from ocr_core.captcha.synthetic import generate_captchas
        from ocr_core.config import DEFAULT_EVALUATION_SAMPLES, DEFAULT_EVALUATION_SEED
        from ocr_core.files import sha256_file

        evaluation_set = generate_captchas(tmp_path / "evaluation", DEFAULT_EVALUATION_SAMPLES,
                                           seed=DEFAULT_EVALUATION_SEED)  # the registry's
        reserved = {sha256_file(p) for p in evaluation_set}
        reserved |= {sha256_file(p) for p in generate_captchas(tmp_path / "main", 10, seed=42)}
        seeds = []
        for name in ("a", "b"):
            result = runner.invoke(main, ["generate", "--count", "10", str(tmp_path / name)])
            assert result.exit_code == 0, result.output
            seed = int(result.stdout.split("(seed ", 1)[1].split(";")[0])
            assert result.stdout.strip().endswith(f"(seed {seed}; the same images again: "
                                                  f"--seed {seed})")
            seeds.append(seed)
            assert not {sha256_file(p) for p in (tmp_path / name).glob("*.png")} & reserved
        assert seeds[0] != seeds[1] and not {42, DEFAULT_EVALUATION_SEED} & set(seeds)

        again = runner.invoke(main, ["generate", "--count", "10", "--seed", str(seeds[0]),
                                     str(tmp_path / "again")])
        assert again.exit_code == 0
        assert ({p.name: p.read_bytes() for p in (tmp_path / "again").glob("*.png")}
                == {p.name: p.read_bytes() for p in (tmp_path / "a").glob("*.png")})
        reused = runner.invoke(main, ["generate", "--count", "10", "--seed", "2024",
                                      str(tmp_path / "evaluation-again")])
        assert "seed 2024 is the registry's evaluation seed" in reused.stderr
        assert {sha256_file(p) for p in (tmp_path / "evaluation-again").glob("*.png")} <= reserved

    def test_evaluate_empty_folder(self, runner, untrained_bundle, tmp_path):
        result = runner.invoke(main, ["evaluate", "--model", str(untrained_bundle), str(tmp_path)])
        assert result.exit_code == 3
        assert "no .png files in" in _one_line_error(result)
