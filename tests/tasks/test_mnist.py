import json
import time

import numpy as np
import pytest
from prefect.logging import disable_run_logger

from ocr_core.errors import DataError
from ocr_core.mnist.data import load_arrays
from tasks.mnist import (
    comparison_rows,
    describe_digits,
    evaluate_digit_model,
    load_mnist,
    locate_mnist,
    plot_digits,
    train_digit_model,
)
from tests.mnist_files import write_idx_copy


@pytest.fixture(autouse=True)
def quiet_run_logger():
    with disable_run_logger():
        yield


def _locate(path, results_dir, port=9, source="local"):
    return locate_mnist.fn(source, path, results_dir, "127.0.0.1", port, 2.0)


@pytest.fixture
def digit_data(mnist_dir, results_dir):
    return load_mnist.fn(_locate(mnist_dir, results_dir), results_dir)


class TestLocate:
    def test_digest_follows_content_not_folder(self, tmp_path, mnist_dir, mnist_arrays, results_dir):
        copy = tmp_path / "copy"
        write_idx_copy(copy, mnist_arrays)
        assert _locate(copy, results_dir).content_digest == _locate(mnist_dir, results_dir).content_digest
        changed = [a.copy() for a in mnist_arrays]
        changed[0][0, 0, 0] ^= 1
        write_idx_copy(copy, changed)
        assert _locate(copy, results_dir).content_digest != _locate(mnist_dir, results_dir).content_digest

    def test_offline_download_fails_fast(self, results_dir, closed_port):
        start = time.monotonic()
        with pytest.raises(DataError, match="--source local --mnist-path DIR"):
            _locate(None, results_dir, port=closed_port, source="tfds")
        assert time.monotonic() - start < 3


class TestLoadAndShow:
    def test_canonical_npz_under_results_root(self, digit_data, results_dir, mnist_arrays):
        path = results_dir / digit_data.path
        assert path.is_relative_to(results_dir / "data" / "mnist") and path.name == "mnist.npz"
        arrays = load_arrays(path)
        assert digit_data.content_digest == arrays.digest()
        assert digit_data.counts == {"train": 300, "test": 100}
        np.testing.assert_array_equal(arrays.x_train, mnist_arrays[0])

    def test_describe_digits_reports_shapes(self, digit_data, results_dir):
        assert describe_digits.fn(digit_data, results_dir) == {
            "x_train": [300, 28, 28], "y_train": [300], "x_test": [100, 28, 28], "y_test": [100]}

    def test_plot_digits_is_named_by_content(self, digit_data, results_dir):
        first = plot_digits.fn(digit_data, 0, results_dir)
        assert (results_dir / first.path).is_file() and first.path.startswith("plots/")
        assert plot_digits.fn(digit_data, 1, results_dir).path != first.path


@pytest.mark.slow
def test_train_then_evaluate(prefect_server, digit_data, results_dir):
    model = train_digit_model.fn(digit_data, "simple_cnn", 1, 1, 64, 0.2, 0, results_dir, threads=None)
    folder = results_dir / model.path
    assert folder.parent == results_dir / "models" and folder.name.startswith("mnist-simple_cnn-")
    assert {p.name for p in folder.iterdir()} == {"model.keras", "bundle.json", "params.json",
                                                  "history.json", "metrics.json"}
    assert model.epochs_run == 1 and model.best_epoch == 1 and model.parameters == 592_074
    assert set(model.validation) == {"val_loss", "val_accuracy"}

    bundle_before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report = evaluate_digit_model.fn(model, digit_data, 64, results_dir)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == bundle_before  # immutable
    assert report.metrics["count"] == 100
    assert report.metrics["error_percent"] == pytest.approx(100 * (1 - report.metrics["accuracy"]))
    assert all((results_dir / p).is_file() for p in report.outputs())
    stored = json.loads((results_dir / report.path).read_text())
    assert np.array(stored["confusion_matrix"]).sum() == 100
    assert "test" not in json.loads((folder / "metrics.json").read_text())

    rows = comparison_rows([model], [report])
    assert rows == [{"model": "simple_cnn", "parameters": 592_074, "epochs": "1 best / 1 run",
                     "accuracy": round(report.metrics["accuracy"], 4),
                     "error %": round(report.metrics["error_percent"], 2),
                     "train seconds": round(model.train_seconds, 1)}]
