"""The end of a training, for both model kinds: a complete bundle in the key's folder is the
result, never retrained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import flow
from prefect.logging import disable_run_logger

from tasks.captcha import build_datasets, fingerprint_folder, split_dataset
from tasks.digit_records import DigitData, DigitModel
from tasks.mnist import load_mnist, locate_mnist, train_digit_model
from tasks.records import Datasets, ModelBundle
from tasks.training import train_model
from tasks.validation import validate_images

pytestmark = pytest.mark.slow


def _datasets(captcha_dir: Path, results_dir: Path) -> Datasets:
    with disable_run_logger():
        manifest = validate_images.fn(fingerprint_folder.fn(captcha_dir), results_dir)
        return build_datasets.fn(split_dataset.fn(manifest, 1, 0.2, 0.2, results_dir), "crnn",
                                 results_dir)


@flow
def train_flow(datasets: Datasets, results_dir: Path) -> ModelBundle:
    return train_model(datasets, "crnn", 1, 1, 8, None, False, 1, results_dir)


def test_a_run_killed_before_its_result_was_kept_does_not_train_again(
    prefect_server, captcha_dir, results_dir
):
    datasets = _datasets(captcha_dir, results_dir)
    # What a run killed after training, before Prefect persisted the result, leaves: the bundle.
    with disable_run_logger():
        trained = train_model.fn(datasets, "crnn", 1, 1, 8, None, False, 1, results_dir)
    model_file = results_dir / trained.path / "model.keras"
    written = model_file.stat().st_mtime_ns

    state = train_flow(datasets, results_dir, return_state=True)
    again = state.result()
    assert again == trained
    assert model_file.stat().st_mtime_ns == written  # the same file: not trained again
    assert not any((results_dir / "work").iterdir())


def test_the_bundle_names_its_training_data_by_content_and_its_step_by_key(
    captcha_dir, results_dir
):
    datasets = _datasets(captcha_dir, results_dir)
    with disable_run_logger():
        trained = train_model.fn(datasets, "crnn", 1, 1, 8, None, False, 1, results_dir)
    info = json.loads((results_dir / trained.path / "bundle.json").read_text())
    split = json.loads((results_dir / datasets.split_manifest).read_text())
    assert info["training_data_sha256"] == split["digest"]  # the images' labels and bytes
    assert info["training_step_key"] == trained.step_key and trained.path.endswith(trained.step_key)


@flow
def digit_training_flow(data: DigitData, results_dir: Path) -> DigitModel:
    return train_digit_model(data, "dense", 1, 1, 64, 0.2, 0, results_dir)


def test_a_digit_training_killed_before_its_result_was_kept_does_not_train_again(
    prefect_server, mnist_dir, results_dir
):
    with disable_run_logger():
        source = locate_mnist.fn("local", mnist_dir, results_dir, "127.0.0.1", 9, 2.0)
        data = load_mnist.fn(source, results_dir)
        trained = train_digit_model.fn(data, "dense", 1, 1, 64, 0.2, 0, results_dir)
    model_file = results_dir / trained.path / "model.keras"
    written = model_file.stat().st_mtime_ns

    again = digit_training_flow(data, results_dir)
    assert again == trained and again.parameters == 101_770
    assert model_file.stat().st_mtime_ns == written
    assert not any((results_dir / "work").iterdir())
