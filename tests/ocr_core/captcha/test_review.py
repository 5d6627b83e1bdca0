"""The review queue: threshold, file names (clashes, empty readings), JSON lines, and the round trip
through ingest after a person corrected the names."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocr_core.captcha.review import REVIEW_LOG, queue_for_review, read_review_log, review_name
from ocr_core.data import ingest
from ocr_core.errors import ConfigError, ModelError


@dataclass(frozen=True)
class Reading:
    path: str
    text: str
    confidence: float


@pytest.fixture
def images(tmp_path, captcha_dir) -> list[Path]:
    """Six captchas to read, outside any dataset."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    return [Path(shutil.copy(p, folder)) for p in sorted(captcha_dir.glob("*.png"))[10:16]]


class TestNames:
    def test_prediction_then_numbered_suffixes(self):
        assert review_name("bcdef", set()) == "bcdef.png"
        assert review_name("bcdef", {"bcdef.png"}) == "bcdef-2.png"
        assert review_name("bcdef", {"bcdef.png", "bcdef-2.png"}) == "bcdef-3.png"
        assert review_name("", set()) == "_empty_.png"


class TestNamesStayInside:
    @pytest.mark.parametrize(("prediction", "name"), [
        ("../evil", "%2E.%2Fevil.png"), ("/etc/cron.d/x", "%2Fetc%2Fcron.d%2Fx.png"),
        ("..", "%2E..png"), (".hidden", "%2Ehidden.png"), ("a\\b", "a%5Cb.png"),
        ("a\x00b\nc", "a%00b%0Ac.png"), ("50%", "50%25.png"),
    ])
    def test_characters_that_steer_a_path_are_escaped(self, prediction, name):
        assert review_name(prediction, set()) == name

    def test_a_long_reading_is_cut_to_a_valid_name(self):
        assert len(review_name("x" * 400, set()).encode()) <= 255

    def test_a_reading_that_would_escape_is_written_inside(self, images, tmp_path):
        review = tmp_path / "deep" / "review"
        items = queue_for_review([Reading(str(images[0]), "../../escaped", 0.1),
                                  Reading(str(images[1]), "/tmp/abs", 0.1)], 0.5, review)
        assert [item.file for item in items] == ["%2E.%2F..%2Fescaped.png", "%2Ftmp%2Fabs.png"]
        assert sorted(p.name for p in review.iterdir()) == sorted([*(i.file for i in items),
                                                                   REVIEW_LOG])
        assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["review"]
        assert not (tmp_path / "escaped.png").exists()

    def test_the_final_path_is_checked_before_writing(self, images, tmp_path, monkeypatch):
        import ocr_core.captcha.review

        monkeypatch.setattr(ocr_core.captcha.review, "review_name", lambda prediction, taken: prediction)
        review = tmp_path / "review"
        with pytest.raises(ModelError, match=r"'\.\./out\.png' would be written outside the "
                                             "review folder"):
            queue_for_review([Reading(str(images[0]), "../out.png", 0.1)], 0.5, review)
        assert not (tmp_path / "out.png").exists() and list(review.iterdir()) == []

    def test_a_link_in_the_folder_is_not_written_through(self, images, tmp_path):
        review = tmp_path / "review"
        review.mkdir()
        (review / "bcdef.png").symlink_to(tmp_path / "victim.png")
        items = queue_for_review([Reading(str(images[0]), "bcdef", 0.1)], 0.5, review)
        assert items[0].file == "bcdef-2.png" and not (tmp_path / "victim.png").exists()


class TestQueue:
    def test_only_readings_below_the_threshold_are_queued(self, images, tmp_path):
        review = tmp_path / "review"
        readings = [Reading(str(images[0]), "bcdef", 0.2), Reading(str(images[1]), "ggggg", 0.5),
                    Reading(str(images[2]), "nnnnn", 0.49), Reading(str(images[3]), "xxxxx", 0.99)]
        items = queue_for_review(readings, 0.5, review)
        assert [item.prediction for item in items] == ["bcdef", "nnnnn"]
        assert sorted(p.name for p in review.iterdir()) == ["bcdef.png", "nnnnn.png", REVIEW_LOG]
        assert (review / "bcdef.png").read_bytes() == images[0].read_bytes()
        assert images[0].exists()  # a copy: the source stays

    def test_clashes_empty_readings_and_json_lines(self, images, tmp_path):
        review = tmp_path / "review"
        readings = [Reading(str(images[0]), "bcdef", 0.1), Reading(str(images[1]), "bcdef", 0.2),
                    Reading(str(images[2]), "", 0.0)]
        queue_for_review(readings, 0.9, review)
        queue_for_review([Reading(str(images[3]), "bcdef", 0.3)], 0.9, review)  # a later run
        lines = [json.loads(line) for line in (review / REVIEW_LOG).read_text().splitlines()]
        assert lines == [
            {"source": str(images[0]), "file": "bcdef.png", "prediction": "bcdef", "confidence": 0.1},
            {"source": str(images[1]), "file": "bcdef-2.png", "prediction": "bcdef",
             "confidence": 0.2},
            {"source": str(images[2]), "file": "_empty_.png", "prediction": "", "confidence": 0.0},
            {"source": str(images[3]), "file": "bcdef-3.png", "prediction": "bcdef",
             "confidence": 0.3},
        ]
        assert [item.file for item in read_review_log(review)] == [
            "bcdef.png", "bcdef-2.png", "_empty_.png", "bcdef-3.png"]

    def test_the_same_image_is_not_queued_twice(self, images, tmp_path):
        review = tmp_path / "review"
        reading = Reading(str(images[0]), "bcdef", 0.1)
        assert len(queue_for_review([reading], 0.5, review)) == 1
        assert queue_for_review([reading], 0.5, review) == []
        assert len(read_review_log(review)) == 1

    def test_threshold_bounds(self, images, tmp_path):
        assert queue_for_review([Reading(str(images[0]), "bcdef", 0.0)], 0, tmp_path / "r") == []
        with pytest.raises(ConfigError, match="between 0 and 1"):
            queue_for_review([], 1.5, tmp_path / "r")


def test_corrected_names_go_back_into_the_dataset(images, tmp_path, captcha_dir):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for path in sorted(captcha_dir.glob("*.png"))[:6]:
        shutil.copy(path, dataset)
    review = tmp_path / "review"
    # The model misread the first three and read the fourth right but unsure.
    readings = [Reading(str(p), "bbbbb", 0.3) for p in images[:3]]
    readings.append(Reading(str(images[3]), images[3].stem, 0.6))
    queue_for_review(readings, 0.7, review)
    assert {p.name for p in review.glob("*.png")} == {
        "bbbbb.png", "bbbbb-2.png", "bbbbb-3.png", f"{images[3].stem}.png"}

    # A person renames the misreads to their true labels (here: the names they came with) but
    # leaves one undecided.
    for item in read_review_log(review)[:2]:
        (review / item.file).rename(review / Path(item.source).name)

    outcome = ingest.carry_out(ingest.plan_ingest(review, dataset))
    assert sorted(outcome.accepted) == sorted([images[0].name, images[1].name, images[3].name])
    assert list(outcome.refused) == ["bbbbb-3.png"]  # its suffix fails the label check
    assert outcome.refused["bbbbb-3.png"][0].startswith("label 'bbbbb-3' does not match")
    assert sorted(p.name for p in review.iterdir()) == ["bbbbb-3.png", REVIEW_LOG]
    assert all((dataset / images[i].name).read_bytes() == images[i].read_bytes() for i in (0, 1, 3))
