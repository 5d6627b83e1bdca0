import json
import re

import numpy as np
import pytest

from ocr_core.bundle.folder import load_bundle, save_bundle
from ocr_core.errors import ConfigError, ModelError
from ocr_core.mnist.models import MODEL_NAMES, build_model, bundle_fields, get_spec

# By hand: dense 784*128+128 + 128*10+10; simple_cnn 5*5*32+32 + 12*12*32*128+128 + 128*10+10;
# larger_cnn 5*5*30+30 + 3*3*30*15+15 + 5*5*15*128+128 + 128*50+50 + 50*10+10.
PARAMETERS = {"dense": 101_770, "simple_cnn": 592_074, "larger_cnn": 59_933}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")


@pytest.mark.parametrize("name", MODEL_NAMES)
class TestModels:
    def test_shape_and_size(self, name, images):
        model = build_model(name, seed=0)
        assert model.input_shape == (None, 28, 28, 1)
        assert model.predict(images, verbose=0).shape == (3, 10)
        assert model.count_params() == PARAMETERS[name]

    def test_outputs_match_the_declared_kind(self, name, images):
        outputs = build_model(name, seed=0).predict(images, verbose=0)
        sums = outputs.sum(axis=1)
        if get_spec(name).from_logits:
            assert not np.allclose(sums, 1.0)
        else:
            np.testing.assert_allclose(sums, 1.0, rtol=1e-5)

    def test_seed_reproduces_weights(self, name):
        first, again, other = (build_model(name, seed=s).get_weights() for s in (1, 1, 2))
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_compiled_with_the_seed_settings():
    model = build_model("dense")
    assert model.loss.from_logits is True
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert build_model("simple_cnn").loss.from_logits is False


def test_unknown_model_lists_choices():
    with pytest.raises(ConfigError, match="unknown MNIST model 'lenet'; choose from dense, "
                                          "simple_cnn, larger_cnn"):
        get_spec("lenet")


class TestModelFolder:
    def test_round_trip(self, tmp_path, images):
        model = build_model("larger_cnn", seed=0)
        folder = save_bundle(tmp_path / "m", model, bundle_fields("larger_cnn"),
                             recipe="larger_cnn", training_data_sha256="abc", step_key="k1",
                             params={"epochs": 1}, history={"loss": [0.5]},
                             metrics={"validation": {"val_loss": 0.4}})
        bundle = load_bundle(folder / "model.keras", kind="digits")
        np.testing.assert_allclose(bundle.model.predict(images, verbose=0),
                                   model.predict(images, verbose=0), rtol=1e-6)
        assert bundle.kind == "digits" and bundle.from_logits is False
        assert bundle.info["output"] == "probabilities"
        assert bundle.info["classes"] == [str(digit) for digit in range(10)]
        assert bundle.info["parameters"] == PARAMETERS["larger_cnn"]
        assert (bundle.training_data_sha256, bundle.training_step_key) == ("abc", "k1")
        assert bundle.params == {"epochs": 1}

    def test_the_dense_model_says_it_outputs_logits(self, tmp_path):
        folder = save_bundle(tmp_path / "m", build_model("dense"), bundle_fields("dense"),
                             recipe="dense", training_data_sha256="abc", params={}, history={})
        assert load_bundle(folder, kind="digits").from_logits is True

    def test_not_a_model_folder(self, tmp_path):
        with pytest.raises(ModelError, match="not a model bundle"):
            load_bundle(tmp_path, kind="digits")

    def test_a_captcha_bundle_is_refused(self, tmp_path):
        (tmp_path / "model.keras").write_bytes(b"")
        (tmp_path / "bundle.json").write_text(json.dumps({
            "format": 1, "vocabulary": "abc", "blank_index": 0, "recipe": "crnn",
            "input": {"height": 8, "width": 16}, "training_manifest_sha256": "0"}))
        with pytest.raises(ModelError, match=f"^{re.escape(str(tmp_path))} holds a captcha model; "
                                             "this needs a digits model$"):
            load_bundle(tmp_path, kind="digits")
