"""validate_images: the report is written (also when it fails) and the manifest holds what passed."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from prefect.logging import disable_run_logger

from ocr_core.data import dataset as ds
from ocr_core.errors import DataError
from tasks.captcha import fingerprint_folder
from tasks.validation import validate_images


@pytest.fixture(autouse=True)
def _quiet_run_logger():
    with disable_run_logger():
        yield


@pytest.fixture
def mixed_dir(tmp_path, captcha_dir) -> Path:
    """Ten generated captchas, a 100x30 image and a corrupt file."""
    folder = tmp_path / "captchas"
    folder.mkdir()
    for path in sorted(captcha_dir.glob("*.png"))[:10]:
        shutil.copy(path, folder)
    Image.new("RGB", (100, 30)).save(folder / "44444.png")
    (folder / "33333.png").write_bytes(b"\x89PNG broken")
    return folder


def test_skip_indexes_the_good_images(mixed_dir, results_dir):
    manifest = validate_images.fn(fingerprint_folder.fn(mixed_dir), results_dir, "skip")
    records, vocabulary = ds.read_manifest(results_dir / manifest.path)
    assert manifest.count == len(records) == 10
    assert {Path(r.path).name for r in records}.isdisjoint({"44444.png", "33333.png"})
    assert set(vocabulary) <= set("2345678bcdefgmnpwxy") and manifest.vocabulary == vocabulary
    report = json.loads((results_dir / manifest.report).read_text())
    assert report["rejected"] == ["33333.png", "44444.png"]
    assert (results_dir / manifest.report).with_name("report.md").read_text().startswith(
        "# Captcha data")


def test_fail_stops_and_still_writes_the_report(mixed_dir, results_dir):
    with pytest.raises(DataError, match=r"2 of 12 images .* failed validation: 33333.png: .*"
                                        r"44444.png: size 100x30.*\(report: (\S+)\)") as caught:
        validate_images.fn(fingerprint_folder.fn(mixed_dir), results_dir)
    report_path = Path(str(caught.value).split("(report: ")[1].split(")")[0])
    assert json.loads(report_path.read_text())["policy"] == "fail"


def test_spec_parameters(tmp_path, results_dir):
    Image.new("L", (160, 60)).save(tmp_path / "AB12.png")
    images = fingerprint_folder.fn(tmp_path)
    manifest = validate_images.fn(images, results_dir, "fail", "[A-Z0-9]{4}", (160, 60))
    assert manifest.count == 1 and manifest.vocabulary == "12AB"
