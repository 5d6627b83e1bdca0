"""`review --below P --review-dir DIR` through click's runner, with an untrained model."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from flows.cli import main
from ocr_core.captcha.review import REVIEW_LOG
from tests.flows.test_cli import untrained_bundle  # noqa: F401  (a fixture)


def test_low_confidence_reads_are_queued_with_a_json_line_each(
    untrained_bundle, captcha_dir, tmp_path  # noqa: F811
):
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted(captcha_dir.glob("*.png"))[:3]:
        shutil.copy(path, images)
    review = tmp_path / "review"
    printed = CliRunner().invoke(main, ["predict", "--model", str(untrained_bundle), "--format",
                                        "json", str(images)])
    result = CliRunner().invoke(main, ["review", "--model", str(untrained_bundle), "--below", "1",
                                       "--review-dir", str(review), str(images)])
    assert result.exit_code == 0, result.output
    read = [json.loads(line) for line in printed.stdout.splitlines()]
    lines = [json.loads(line) for line in (review / REVIEW_LOG).read_text().splitlines()]
    assert [(x["source"], x["prediction"], x["confidence"]) for x in lines] == [
        (r["path"], r["text"], r["confidence"]) for r in read]  # an untrained model is never
    # sure: all three are queued, with what predict prints
    assert {p.name for p in review.glob("*.png")} == {x["file"] for x in lines}
    assert "queued 3 of 3 images" in result.stdout

    again = CliRunner().invoke(main, ["review", "--model", str(untrained_bundle), "--below", "0",
                                      "--review-dir", str(review), str(images)])
    assert again.exit_code == 0 and "queued 0 of 3 images" in again.stdout


def test_review_needs_its_folder(tmp_path):
    result = CliRunner().invoke(main, ["review", "--below", "0.5", str(tmp_path)])
    assert result.exit_code == 2 and "Missing option '--review-dir'" in result.output


def test_predict_names_the_command_that_took_over_a_moved_flag(tmp_path):
    result = CliRunner().invoke(main, ["predict", "--review-below", "0.5", str(tmp_path)])
    assert result.exit_code == 2 and "--review-below moved to `ocr-pipeline review`" in result.output
    result = CliRunner().invoke(main, ["predict", "--output", "p.csv", str(tmp_path)])
    assert result.exit_code == 2 and "--output moved to `ocr-pipeline predict-batch`" in result.output


def test_a_bundle_whose_vocabulary_steers_paths_is_refused_before_any_write(
    untrained_bundle, captcha_dir, tmp_path  # noqa: F811
):
    crafted = tmp_path / "crafted"
    shutil.copytree(untrained_bundle, crafted)
    info = json.loads((crafted / "bundle.json").read_text())
    vocabulary = "../" + info["vocabulary"][3:]  # same size: the model would load and read
    (crafted / "bundle.json").write_text(json.dumps(info | {"vocabulary": vocabulary}))
    review = tmp_path / "review"
    result = CliRunner().invoke(main, ["review", "--model", str(crafted), "--below", "1",
                                       "--review-dir", str(review), str(captcha_dir)])
    assert result.exit_code == 4, result.output
    assert f"Error: {crafted / 'bundle.json'}: vocabulary entry 0 ('.') is a dot" in result.output
    assert not review.exists()
