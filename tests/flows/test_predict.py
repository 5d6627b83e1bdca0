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
from ocr_core.storage import open_root
from ocr_core.storage.errors import StorageError
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
    assert (summary.images, summary.shards, summary.output) == (40, 6, str(output))
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


class TestStore:
    """Inputs in a bucket and the results file written there, on the test S3 API server."""

    def test_a_store_folder_is_read_into_a_results_file_in_the_store(
        self, prefect_server, s3_root, images, bundle, tmp_path  # noqa: F811
    ):
        chosen = sorted(images.glob("*.png"))[:10]
        root = open_root(s3_root)
        for path in chosen:
            root.write_bytes(f"incoming/{path.name}", path.read_bytes())
        for extra in (".hidden.png", "notes.txt", "nested/deeper.png"):  # as a folder: not read
            root.write_bytes(f"incoming/{extra}", chosen[0].read_bytes())
        output = f"{s3_root}/out/predictions.csv"
        result = CliRunner().invoke(main, [
            "predict-batch", "--model", str(bundle.path), "--output", output, "--shard-size", "4",
            "--results-dir", s3_root, f"{s3_root}/incoming"])
        assert result.exit_code == 0, result.output
        assert f"wrote 10 predictions (3 shards, model {bundle.path.name}) to {output}" in \
            result.stderr
        copy = tmp_path / "predictions.csv"
        copy.write_bytes(root.read_bytes("out/predictions.csv"))
        read = read_predictions(copy)
        assert [p.path for p in read] == [f"{s3_root}/incoming/{p.name}" for p in chosen]
        expected = predict_files(bundle, chosen)
        assert [p.text for p in read] == [p.text for p in expected]
        assert all(abs(a.confidence - b.confidence) < 1e-5 for a, b in zip(read, expected, strict=True))
        assert root.listdir("work") == []  # the parts went

    def test_a_missing_store_folder_or_bucket_is_named(self, s3_root):
        from tasks.predict import list_images

        with pytest.raises(DataError, match=f"^no such file or folder: {s3_root}/nothing$"):
            list_images.fn([f"{s3_root}/nothing"])
        with pytest.raises(StorageError, match="^no such bucket for s3://no-such-bucket-x/in: "):
            list_images.fn(["s3://no-such-bucket-x/in"])
        open_root(s3_root).write_bytes("text/a.txt", b"not an image")
        with pytest.raises(DataError, match=f"^no .png files in {s3_root}/text$"):
            list_images.fn([f"{s3_root}/text"])

    def test_a_bad_store_image_is_named_by_its_url(self, s3_root, images, bundle):  # noqa: F811
        from ocr_core.registry import bundle_digest
        from tasks.predict import ChosenModel, read_shard

        root = open_root(s3_root)
        good, bad = sorted(images.glob("*.png"))[:2]
        root.write_bytes("in/good.png", good.read_bytes())
        root.write_bytes("in/bad.png", bad.read_bytes()[:60])  # a PNG cut short
        model = ChosenModel(str(bundle.path), bundle_digest(bundle.path), name="strips")
        with pytest.raises(DataError, match=f"^cannot decode {s3_root}/in/bad.png: "):
            read_shard.fn(model, [f"{s3_root}/in/good.png", f"{s3_root}/in/bad.png"],
                          "work/part-0.csv", s3_root, "csv", "greedy", 16, 4)

    def test_a_failed_join_leaves_the_previous_results_file(self, s3_root):
        from tasks.predict import PredictionPart, join_predictions

        root = open_root(s3_root)
        root.write_bytes("out/p.jsonl", b"previous\n")
        root.write_bytes("work/part-0.jsonl", b'{"path": "a.png"}\n')
        parts = [PredictionPart("work/part-0.jsonl", 1, "w", 0.1),
                 PredictionPart("work/part-1.jsonl", 1, "w", 0.1)]  # this one was never written
        with pytest.raises(FileNotFoundError):
            join_predictions.fn(parts, f"{s3_root}/out/p.jsonl", "jsonl", s3_root)
        assert root.read_bytes("out/p.jsonl") == b"previous\n"
        assert root.listdir("out") == ["p.jsonl"]


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

    def test_a_store_url_is_taken_as_it_is(self, bundle):  # noqa: F811
        result = CliRunner().invoke(main, ["predict-batch", "--model", str(bundle.path), "--output",
                                           "s3://bucket/out/p.txt", "s3://bucket/in"])
        assert result.exit_code == 2
        assert "--output: s3://bucket/out/p.txt must end in .csv or .jsonl" in result.output

    def test_a_missing_input_fails_before_prefect_starts(self, tmp_path, bundle):  # noqa: F811
        result = CliRunner().invoke(main, ["predict-batch", "--model", str(bundle.path), "--output",
                                           str(tmp_path / "p.csv"), str(tmp_path / "nope")])
        assert result.exit_code == 3
        assert result.output.strip().splitlines()[-1] == (
            f"Error: no such file or folder: {tmp_path / 'nope'}")
        assert not (tmp_path / "p.csv").exists()
