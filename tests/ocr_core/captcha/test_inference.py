"""The batched reading path (tf.data + one traced model function + numpy greedy decoding) against
the one-by-one eager path it replaced: same texts and confidences, same clear errors."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers, ops

from ocr_core.bundle.folder import captcha_fields, load_bundle, save_bundle
from ocr_core.captcha.ctc import BLANK_INDEX
from ocr_core.captcha.inference import (
    check_pngs,
    compiled_model,
    expand_inputs,
    list_inputs,
    predict_files,
)
from ocr_core.captcha.pipeline import load_image
from ocr_core.errors import DataError

VOCABULARY = "2345678bcdefgmnpwxy"
WIDTH, HEIGHT, STEPS = 128, 32, 16


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A model whose reading depends on every pixel: each of 16 column strips -> Dense logits.

    Untrained CRNNs read every image alike; this one gives each captcha its own text and
    confidences far from 0, so a mix-up of order or a numeric drift shows.
    """
    inputs = keras.Input((WIDTH, HEIGHT, 1), name="image")
    ink = layers.Rescaling(-1.0, offset=1.0)(inputs)  # background 0, strokes up to 1
    strips = layers.Reshape((STEPS, WIDTH // STEPS * HEIGHT))(ink)  # (batch, time, pixels)
    dense = layers.Dense(len(VOCABULARY) + 1, name="logits",
                         kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=1))
    logits = dense(strips)  # (batch, time, classes)
    kernel, bias = dense.get_weights()
    bias[BLANK_INDEX] = 8.0  # blank unless a strip has ink: peaked, readable confidences
    dense.set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("bundle") / "strips"
    save_bundle(path, keras.Model(inputs, logits), captcha_fields(VOCABULARY, HEIGHT, WIDTH),
                recipe="crnn", training_data_sha256="0", params={}, history={})
    return load_bundle(path)


def one_by_one(bundle, paths, strategy: str, beam_width: int = 16):
    """The previous path: each image decoded eagerly, the model called eagerly, TensorFlow's decoder."""
    texts, confidences = [], []
    for path in paths:
        logits = bundle.model([load_image(path, bundle.height, bundle.width)[None]], training=False)
        log_probs = ops.log_softmax(logits, axis=-1)
        decoded, scores = ops.ctc_decode(log_probs, ops.full((1,), STEPS, dtype="int32"),
                                         strategy=strategy, beam_width=beam_width, top_paths=1,
                                         mask_index=BLANK_INDEX)
        score = float(ops.convert_to_numpy(scores)[0, 0])
        texts.append(bundle.vocabulary.decode(ops.convert_to_numpy(decoded[0])[0]))
        confidences.append(np.exp(-score if strategy == "greedy" else score))
    return texts, np.array(confidences)


class TestSameResultsAsOneByOne:
    @pytest.mark.parametrize("strategy", ["greedy", "beam_search"])
    def test_texts_and_confidences(self, bundle, captcha_dir, strategy):
        paths = expand_inputs([captcha_dir])  # 40: batches of 16, 16 and a last one of 8
        predictions = predict_files(bundle, paths, batch_size=16, strategy=strategy)
        texts, confidences = one_by_one(bundle, paths, strategy)
        assert [p.path for p in predictions] == [str(p) for p in paths]
        assert [p.text for p in predictions] == texts
        assert len(set(texts)) > 30  # the model tells images apart: order mistakes would show
        np.testing.assert_allclose([p.confidence for p in predictions], confidences,
                                   rtol=1e-4, atol=1e-5)
        assert np.median(confidences) > 1e-4  # confidences worth comparing, not all ~0

    def test_batch_size_does_not_change_results(self, bundle, captcha_dir):
        paths = expand_inputs([captcha_dir])
        one = predict_files(bundle, paths, batch_size=1)
        many = predict_files(bundle, paths, batch_size=128)
        assert [p.text for p in one] == [p.text for p in many]
        np.testing.assert_allclose([p.confidence for p in one], [p.confidence for p in many],
                                   rtol=1e-4, atol=1e-6)

    def test_no_files_no_predictions(self, bundle):
        assert predict_files(bundle, []) == []

    def test_model_is_traced_once_per_model(self, bundle):
        assert compiled_model(bundle.model) is compiled_model(bundle.model)

    def test_compiled_model_takes_numpy_and_tensors_of_any_batch(self, bundle):
        images = np.random.default_rng(0).random((3, WIDTH, HEIGHT, 1), dtype="float32")
        expected = bundle.model([images], training=False).numpy()  # (3, time, classes)
        model = compiled_model(bundle.model)
        np.testing.assert_allclose(model(images).numpy(), expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(model(tf.constant(images[:1])).numpy(), expected[:1],
                                   rtol=1e-4, atol=1e-4)


class TestErrorsNameTheFile:
    @pytest.fixture
    def folder(self, captcha_dir, tmp_path):
        folder = tmp_path / "images"
        shutil.copytree(captcha_dir, folder)
        return folder

    def test_corrupt_png_in_the_middle_of_a_folder(self, bundle, folder):
        paths = expand_inputs([folder])
        broken = paths[21]  # in the third batch of 8, with good files on both sides
        broken.write_bytes(broken.read_bytes()[:60])
        with pytest.raises(DataError, match=f"cannot decode {broken}"):
            predict_files(bundle, expand_inputs([folder]), batch_size=8)

    def test_file_removed_after_listing(self, bundle, folder):
        paths = expand_inputs([folder])
        paths[30].unlink()
        with pytest.raises(DataError, match=f"no such file: {paths[30]}"):
            predict_files(bundle, paths, batch_size=8)

    def test_listing_does_not_open_files_and_the_check_names_the_first_bad_one(self, folder):
        paths = list_inputs([folder])
        not_png = paths[5]
        not_png.write_bytes(b"GIF89a" + b"\0" * 40)
        assert list_inputs([folder]) == paths  # listed by name only
        with pytest.raises(DataError, match=f"not a PNG file: {not_png}"):
            check_pngs(paths)
        paths[3].unlink()
        with pytest.raises(DataError, match=f"cannot read {paths[3]}"):
            check_pngs(paths)

    def test_a_missing_input_is_named(self, tmp_path):
        with pytest.raises(DataError, match=f"no such file or folder: {tmp_path / 'nope'}"):
            list_inputs([tmp_path / "nope"])
