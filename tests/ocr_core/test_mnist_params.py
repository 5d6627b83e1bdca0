from pathlib import Path

import pytest
from pydantic import ValidationError

from ocr_core.config import MnistParams


def test_defaults_train_all_three_from_tfds(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    params = MnistParams()
    assert params.models == ["dense", "simple_cnn", "larger_cnn"]
    assert params.source == "tfds" and params.batch_size == 128
    assert params.results_dir == str(tmp_path / "ocr-results")


def test_repeated_models_are_trained_once():
    assert MnistParams(models=["larger_cnn", "dense", "larger_cnn"]).models == ["larger_cnn", "dense"]


@pytest.mark.parametrize(("values", "message"), [
    ({"models": []}, "at least 1 item"),
    ({"models": ["lenet"]}, "Input should be 'dense', 'simple_cnn' or 'larger_cnn'"),
    ({"source": "local"}, "source 'local' needs mnist_path"),
    ({"source": "keras", "mnist_path": "x"}, "mnist_path does not apply to the keras source"),
    ({"validation_fraction": 0.0}, "greater than 0"),
    ({"download_port": 0}, "greater than or equal to 1"),
])
def test_invalid_combinations(values, message):
    with pytest.raises(ValidationError, match=message):
        MnistParams(**values)


def test_mnist_path_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    params = MnistParams(source="local", mnist_path=Path("copy"))
    assert params.mnist_path == tmp_path / "copy"
