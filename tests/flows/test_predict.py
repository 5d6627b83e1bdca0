"""The predict flow: a folder read in shards (threads, or two local Dask workers) into one results
file equal to reading it in one process; a bad image fails the run and leaves nothing half-written."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from click.testing import CliRunner

from flows.cli import main
from ocr_core.captcha.inference import expand_inputs, predict_files
from ocr_core.captcha.prediction_files import read_predictions
from ocr_core.config import PredictParams
from ocr_core.errors import DataError
from tests.flows.test_sweep import _runs_and_artifacts
from tests.ocr_core.captcha.test_inference import bundle  # noqa: F401  (a fixture: a model that reads)

pytestmark = pytest.mark.slow


@pytest.fixture
def images(captcha_dir, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(captcha_dir, folder)
    return folder


def _expected(bundle, folder):  # noqa: F811
    return predict_files(bundle, expand_inputs([folder]))


def _assert_same(read, expected):
    assert [(p.path, p.text) for p in read] == [(p.path, p.text) for p in expected]
    assert all(abs(a.confidence - b.confidence) < 1e-5 for a, b in zip(read, expected, strict=True))


def test_shards_on_threads_make_one_file_in_input_order(prefect_server, results_dir, images,
                                                        bundle):  # noqa: F811
    from flows.predict import captcha_predict

    output = results_dir.parent / "out" / "predictions.csv"
    params = PredictParams(inputs=[images], output=output, model=bundle.path,
                           results_dir=results_dir, shard_size=7, batch_size=4)
    state = captcha_predict(params, return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert (summary.images, summary.shards, summary.output) == (40, 6, output)
    _assert_same(read_predictions(output), _expected(bundle, images))
    assert not list((results_dir / "work").iterdir())  # the parts went

    runs, artifacts = asyncio.run(_runs_and_artifacts(state.state_details.flow_run_id))
    shards = [run for run in runs if run.name.startswith("read_shard")]
    assert sorted(run.state.name for run in shards) == ["Completed"] * 6
    assert "40 images read" in artifacts["captcha-predict"].data
    assert output.as_uri() in artifacts["captcha-predict"].data


def test_a_bad_image_fails_the_run_naming_it_and_keeps_the_old_results(
    prefect_server, results_dir, images, bundle  # noqa: F811
):
    from flows.predict import captcha_predict

    broken = sorted(images.glob("*.png"))[23]  # in the fourth shard of 7
    broken.write_bytes(broken.read_bytes()[:60])
    output = results_dir.parent / "predictions.jsonl"
    output.write_text("previous\n")
    params = PredictParams(inputs=[images], output=output, model=bundle.path,
                           results_dir=results_dir, shard_size=7)
    with pytest.raises(DataError, match=f"cannot decode {broken}"):
        captcha_predict(params)
    assert output.read_text() == "previous\n"
    assert not list((results_dir / "work").iterdir())
    assert not list(output.parent.glob(".tmp-*"))


def test_two_local_dask_workers_share_the_shards_and_write_the_same_file(
    prefect_server, results_dir, images, bundle, monkeypatch  # noqa: F811
):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # the workers report here
    output = results_dir.parent / "predictions.jsonl"
    result = CliRunner().invoke(main, [
        "predict-batch", "--model", str(bundle.path), "--output", str(output), "--shard-size", "5",
        "--dask-workers", "2", "--results-dir", str(results_dir), str(images)])
    assert result.exit_code == 0, result.output
    _assert_same(read_predictions(output), _expected(bundle, images))
    assert [json.loads(line)["path"] for line in output.read_text().splitlines()] == [
        str(p) for p in sorted(images.glob("*.png"))]
    assert f"wrote 40 predictions (8 shards, model {bundle.path.name}) to {output}" in result.stderr
    workers = [line for line in result.stderr.splitlines() if line.startswith("  dask:")]
    assert len(workers) == 2, result.stderr  # both workers read shards


class TestFlags:
    def test_dask_is_for_batches(self, images, bundle):  # noqa: F811
        result = CliRunner().invoke(main, ["predict", "--model", str(bundle.path),
                                           "--dask-workers", "2", str(images)])
        assert result.exit_code == 2 and "No such option '--dask-workers'" in result.output

    def test_the_results_file_needs_a_known_suffix(self, images, bundle):  # noqa: F811
        result = CliRunner().invoke(main, ["predict-batch", "--model", str(bundle.path), "--output",
                                           "p.txt", str(images)])
        assert result.exit_code == 2
        assert "--output: " in result.output and "must end in .csv or .jsonl" in result.output

    def test_format_is_for_printing(self, images, bundle):  # noqa: F811
        result = CliRunner().invoke(main, ["predict-batch", "--model", str(bundle.path), "--output",
                                           "p.csv", "--format", "json", str(images)])
        assert result.exit_code == 2 and "No such option '--format'" in result.output

    def test_a_missing_input_fails_before_prefect_starts(self, tmp_path, bundle):  # noqa: F811
        result = CliRunner().invoke(main, ["predict-batch", "--model", str(bundle.path), "--output",
                                           str(tmp_path / "p.csv"), str(tmp_path / "nope")])
        assert result.exit_code == 3
        assert result.output.strip().splitlines()[-1] == (
            f"Error: no such file or folder: {tmp_path / 'nope'}")
        assert not (tmp_path / "p.csv").exists()
