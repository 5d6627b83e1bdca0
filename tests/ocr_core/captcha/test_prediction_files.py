"""Results files of `predict`: parts joined in order into CSV or JSON lines, all or nothing."""

from __future__ import annotations

import csv
import json

import pytest

from ocr_core.captcha.inference import Prediction
from ocr_core.captcha.prediction_files import join_parts, read_predictions, write_part
from ocr_core.errors import DataError

PREDICTIONS = [
    Prediction("/data/a,b.png", "2b4c5", 0.25),
    Prediction('/data/say "x".png', "", 1.0),  # nothing read: an empty text
    Prediction("/data/c.png", "mnp7x", 0.123456789012345),
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_parts_join_in_the_given_order_and_read_back_exactly(tmp_path, fmt):
    parts = [write_part(PREDICTIONS[2:], tmp_path / f"2.{fmt}", fmt),
             write_part(PREDICTIONS[:2], tmp_path / f"1.{fmt}", fmt)]
    target = join_parts(parts[::-1], tmp_path / "out" / f"predictions.{fmt}", fmt)
    assert read_predictions(target) == PREDICTIONS  # commas, quotes, empty text, full precision


def test_csv_has_one_header_and_a_row_per_image(tmp_path):
    parts = [write_part(PREDICTIONS[:1], tmp_path / "1.csv", "csv"),
             write_part(PREDICTIONS[1:], tmp_path / "2.csv", "csv")]
    rows = list(csv.reader(join_parts(parts, tmp_path / "p.csv", "csv").open(newline="")))
    assert rows[0] == ["path", "text", "confidence"]
    assert [row[0] for row in rows[1:]] == [p.path for p in PREDICTIONS]


def test_jsonl_is_one_object_per_line(tmp_path):
    part = write_part(PREDICTIONS, tmp_path / "1.jsonl", "jsonl")
    lines = join_parts([part], tmp_path / "p.jsonl", "jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [p.as_dict() for p in PREDICTIONS]


def test_a_failed_join_keeps_the_previous_results_file(tmp_path):
    target = tmp_path / "p.csv"
    target.write_text("previous results\n")
    part = write_part(PREDICTIONS, tmp_path / "1.csv", "csv")
    with pytest.raises(FileNotFoundError):
        join_parts([part, tmp_path / "missing.csv"], target, "csv")
    assert target.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_file_that_is_not_a_results_file_is_named(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("name,label\nx,y\n")
    with pytest.raises(DataError, match="other.csv: expected the columns path,text,confidence"):
        read_predictions(other)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"path": "a.png", "text": "x"}\n')
    with pytest.raises(DataError, match="broken.jsonl is not a predictions file"):
        read_predictions(broken)
