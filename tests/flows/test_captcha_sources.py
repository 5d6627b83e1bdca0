"""The captcha flow's url and dir sources end to end, and their errors through the CLI."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from flows.captcha_ocr import captcha_ocr
from flows.cli import main
from ocr_core.config import CaptchaParams
from ocr_core.errors import DataError
from tests.fault_server import Reply

ZIP_PATH = "/files/captcha_images_v2.zip"
RAW_PATH = "/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"


@pytest.mark.slow
def test_url_source_end_to_end(prefect_server, results_dir, file_server, captcha_zip):
    file_server.script(ZIP_PATH, Reply(body=captcha_zip))
    url = file_server.script(RAW_PATH, Reply(302, headers={"Location": ZIP_PATH}))
    params = CaptchaParams(source="url", url=url, sha256=hashlib.sha256(captcha_zip).hexdigest(),
                           epochs=1, batch_size=8, min_val_accuracy=0, results_dir=results_dir,
                           download_timeout=5, download_backoff=0.01)
    summary = captcha_ocr(params)
    assert (Path(summary.model_path) / "model.keras").is_file()
    # The test split is ~10% of the 40 served captchas: each image's split follows its content.
    split = json.loads(next((results_dir / "manifests").glob("split-*.json")).read_text())
    assert summary.metrics["count"] == len(split["test"]) and 1 <= len(split["test"]) <= 10
    report = next((results_dir / "manifests").glob("validation-*/report.json"))
    assert json.loads(report.read_text())["checked"] == 40
    assert len(file_server.hits(ZIP_PATH)) == 1

    again = captcha_ocr(params)
    assert again.model_path == summary.model_path
    assert len(file_server.hits(RAW_PATH)) == 1  # the second run did not touch the network


@pytest.fixture
def dir_with_a_bad_image(tmp_path, captcha_dir) -> Path:
    folder = tmp_path / "captchas"
    shutil.copytree(captcha_dir, folder)
    Image.new("RGB", (100, 30)).save(folder / "44444.png")
    return folder


@pytest.mark.slow
def test_dir_source_is_validated(prefect_server, results_dir, dir_with_a_bad_image):
    params = dict(source="dir", data_dir=dir_with_a_bad_image, epochs=1, batch_size=8, min_val_accuracy=0,
                  results_dir=results_dir)
    with pytest.raises(DataError, match="1 of 41 images .* 44444.png: size 100x30"):
        captcha_ocr(CaptchaParams(**params))
    assert not (results_dir / "models").exists()  # stopped before training

    summary = captcha_ocr(CaptchaParams(**params, validation_policy="skip"))
    split = json.loads(next((results_dir / "manifests").glob("split-*.json")).read_text())
    assert sum(len(split[name]) for name in ("train", "validation", "test")) == 40  # the good ones
    assert summary.metrics["count"] == len(split["test"])


class TestCliErrors:
    @pytest.mark.parametrize(("args", "message"), [
        (["--source", "url", "--url", "ftp://example.org/x.zip"], "only http, https, file URLs"),
        (["--source", "url", "--url", "x.zip"], "file:///absolute/path.zip"),
        (["--source", "dir", "--data-dir", "/no/such/folder"], "--data-dir is not a folder"),
        (["--validation-policy", "maybe"], "'maybe' is not allowed: input should be 'fail' or 'skip'"),
    ])
    def test_bad_input_before_the_flow_starts(self, args, message):
        result = CliRunner().invoke(main, ["captcha", *args])
        assert result.exit_code in (2, 3)
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and message in errors[0]
        assert "Traceback" not in result.output

    @pytest.mark.slow
    def test_unreachable_url(self, prefect_server, results_dir, file_server):
        url = file_server.script(ZIP_PATH, Reply(503))
        result = CliRunner().invoke(main, [
            "captcha", "--source", "url", "--url", url, "--download-attempts", "2",
            "--download-backoff", "0.01", "--results-dir", str(results_dir)])
        assert result.exit_code == 3
        assert result.output.strip().splitlines()[-1] == (
            f"Error: could not download {url} after 2 attempt(s): HTTP 503 Service Unavailable")
        assert len(file_server.hits(ZIP_PATH)) == 2
