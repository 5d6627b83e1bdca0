"""Data validation: each kind of bad file is caught and named; the policies fail or skip."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ocr_core.data.validation import ImageSpec, enforce, report_markdown, validate_folder
from ocr_core.errors import ConfigError, DataError

GOOD = 6


@pytest.fixture
def good_dir(tmp_path, captcha_dir) -> Path:
    folder = tmp_path / "captchas"
    folder.mkdir()
    for path in sorted(captcha_dir.glob("*.png"))[:GOOD]:
        shutil.copy(path, folder)
    return folder


@pytest.fixture
def bad_dir(good_dir) -> Path:
    """The good images plus one file for each problem."""
    first = sorted(good_dir.glob("*.png"))[0]
    (good_dir / "22222.png").write_bytes(first.read_bytes()[:300])  # truncated PNG
    (good_dir / "33333.png").write_bytes(b"not an image at all")
    Image.new("RGB", (100, 30), "white").save(good_dir / "44444.png")
    Image.new("RGB", (200, 50), "red").save(good_dir / "ABCDE.png")
    Image.new("RGB", (200, 50), "green").save(good_dir / "abcde.png")  # 'a' is not a captcha char
    Image.new("RGB", (200, 50), "blue").save(good_dir / "2345.png")  # four characters
    Image.new("RGB", (200, 50)).save(good_dir / "55555.png", format="JPEG")
    Image.new("P", (200, 50)).save(good_dir / "66666.png")
    shutil.copy(first, good_dir / "yyyyy.png")  # same bytes under another label, sorted last
    (good_dir / ".hidden.png").write_bytes(b"ignored")
    return good_dir


class TestProblems:
    def test_good_folder_passes(self, good_dir):
        report = validate_folder(good_dir)
        assert report.checked == GOOD and len(report.accepted) == GOOD and not report.problems
        assert sum(report.character_counts.values()) == 5 * GOOD
        assert report.label_lengths == {5: GOOD}
        assert report.modes == {"RGB": GOOD} and report.sizes == {"200x50": GOOD}
        assert enforce(report) == report.accepted_paths()

    def test_each_problem_is_named(self, bad_dir):
        report = validate_folder(bad_dir, policy="skip")
        problems = {name: " | ".join(found) for name, found in report.problems.items()}
        assert "not a readable image" in problems["22222.png"]
        assert "not a readable image" in problems["33333.png"]
        assert problems["44444.png"] == "size 100x30, expected 200x50"
        assert problems["ABCDE.png"].startswith("label 'ABCDE' does not match")
        assert problems["abcde.png"].startswith("label 'abcde' does not match")
        assert problems["2345.png"].startswith("label '2345' does not match")
        assert problems["55555.png"] == "a JPEG file, not a PNG"
        assert problems["66666.png"] == "mode P, expected one of L, RGB, RGBA"
        first = report.accepted[0]  # the copied image: the first good one by name
        assert problems["yyyyy.png"] == f"same bytes as {first}"
        assert report.duplicates == [[first, "yyyyy.png"]]
        assert report.checked == GOOD + 9  # hidden file not counted
        assert len(report.accepted) == GOOD
        assert report.problem_counts["corrupt"] == 2
        assert report.problem_counts["duplicate"] == 1

    def test_accepted_modes_l_rgb_rgba(self, tmp_path):
        for label, mode in [("bbbbb", "L"), ("ccccc", "RGB"), ("ddddd", "RGBA")]:
            Image.new(mode, (200, 50)).save(tmp_path / f"{label}.png")
        assert validate_folder(tmp_path).modes == {"L": 1, "RGB": 1, "RGBA": 1}
        assert not validate_folder(tmp_path).problems

    def test_custom_spec(self, tmp_path):
        Image.new("L", (160, 60)).save(tmp_path / "AB12.png")
        spec = ImageSpec(width=160, height=60, label_pattern="[A-Z0-9]{4}")
        assert validate_folder(tmp_path, spec).accepted == ["AB12.png"]

    def test_labels_a_vocabulary_cannot_hold_are_refused_whatever_the_pattern(self, tmp_path):
        for shade, label in enumerate(("ab.cd", "ab\\cd", "ab\x7fcd", "abcde")):
            Image.new("L", (20, 10), shade).save(tmp_path / f"{label}.png")
        report = validate_folder(tmp_path, ImageSpec(width=20, height=10, label_pattern=".{5}"),
                                 policy="skip")
        assert report.accepted == ["abcde.png"]
        assert report.problems["ab.cd.png"] == [
            "label 'ab.cd' has '.', which a model's vocabulary cannot hold (predictions become "
            "file names)"]
        assert set(report.problems) == {"ab.cd.png", "ab\x7fcd.png", "ab\\cd.png"}

    def test_bad_settings(self, good_dir):
        with pytest.raises(ConfigError, match="not a regular expression"):
            ImageSpec(label_pattern="[abc")
        with pytest.raises(ConfigError, match="policy"):
            validate_folder(good_dir, policy="ignore")
        with pytest.raises(DataError, match="not a folder"):
            validate_folder(good_dir / "missing")


class TestPolicies:
    def test_fail_lists_the_offending_files(self, bad_dir):
        report = validate_folder(bad_dir, policy="fail")
        with pytest.raises(DataError) as caught:
            enforce(report, "/results/report.json")
        message = str(caught.value)
        assert message.startswith(f"9 of {GOOD + 9} images in {bad_dir} failed validation: ")
        for name in ("22222.png", "44444.png: size 100x30", "ABCDE.png"):
            assert name in message
        assert "(report: /results/report.json)" in message
        assert "validation_policy 'skip'" in message

    def test_fail_lists_at_most_ten(self, tmp_path):
        for index in range(12):
            Image.new("L", (10, 10)).save(tmp_path / f"b{index:04d}.png")
        with pytest.raises(DataError, match="; and 2 more"):
            enforce(validate_folder(tmp_path))

    def test_skip_returns_the_good_files(self, bad_dir):
        accepted = enforce(validate_folder(bad_dir, policy="skip"))
        assert len(accepted) == GOOD
        assert all(p.parent == bad_dir and p.exists() for p in accepted)

    def test_skip_with_nothing_left(self, tmp_path):
        Image.new("L", (10, 10)).save(tmp_path / "bbbbb.png")
        with pytest.raises(DataError, match="no image .* passed validation"):
            enforce(validate_folder(tmp_path, policy="skip"))


class TestReport:
    def test_json_and_markdown(self, bad_dir):
        report = validate_folder(bad_dir, policy="skip")
        data = json.loads(json.dumps(report.as_dict()))
        assert data["rejected"] == sorted(report.problems)
        assert data["spec"]["width"] == 200
        markdown = report_markdown(report)
        assert "| 44444.png | size 100x30, expected 200x50 |" in markdown
        assert "| corrupt | 2 |" in markdown
        assert f"| 5 | {GOOD} |" in markdown


def test_real_captchas_pass(real_captcha_dir):
    report = validate_folder(real_captcha_dir)
    assert not report.problems, report.problems
    assert report.modes == {"RGBA": report.checked} and report.sizes == {"200x50": report.checked}
    assert len(report.character_counts) == 19
    # 'n' is about twice as frequent as the other characters in captcha_images_v2
    counts = report.character_counts
    assert counts["n"] > 1.5 * max(v for k, v in counts.items() if k != "n")
