import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ocr_core.captcha.ctc import Vocabulary
from ocr_core.captcha.pipeline import decode_image, encode_labels, load_image, load_split, save_split
from ocr_core.data import dataset as ds


def _png(mode, size=(200, 50), value=128):
    buffer = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(buffer, "PNG")
    return buffer.getvalue()


class TestDecodeImage:
    @pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
    def test_grey_float_transposed(self, mode):
        image = decode_image(tf.constant(_png(mode)), 50, 200)
        assert image.shape == (200, 50, 1)  # width is the time axis
        assert image.dtype == tf.float32
        np.testing.assert_allclose(image.numpy(), 128 / 255, atol=1e-2)

    def test_resizes_to_the_requested_size(self):
        assert decode_image(tf.constant(_png("RGB", (100, 30))), 32, 128).shape == (128, 32, 1)

    def test_orientation_is_preserved(self):
        # A black left half must land at the start of the time axis.
        picture = np.full((50, 200), 255, dtype="uint8")
        picture[:, :100] = 0
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, "PNG")
        image = decode_image(tf.constant(buffer.getvalue()), 50, 200).numpy()
        assert image[:90].max() < 0.05 and image[110:].min() > 0.95

    def test_real_captcha_range(self, real_captcha_dir):
        image = load_image(sorted(real_captcha_dir.glob("*.png"))[0], 50, 200).numpy()
        assert image.shape == (200, 50, 1)
        assert 0.0 <= image.min() < image.max() <= 1.0


class TestSavedSplits:
    def test_batches_have_model_shapes_and_ranges(self, tmp_path, captcha_dir):
        records = ds.index_images(ds.list_pngs(captcha_dir))[:10]
        vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
        count = save_split(records, vocabulary, tmp_path / "train", height=32, width=128,
                           max_label_length=6)
        assert count == 10
        images, labels = next(iter(load_split(tmp_path / "train", batch_size=4)))
        assert images.shape == (4, 128, 32, 1) and images.dtype == tf.float32
        assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
        assert labels.shape == (4, 6) and labels.dtype == tf.int32
        assert [vocabulary.decode(row) for row in labels.numpy()] == [r.label for r in records[:4]]

    def test_shuffle_is_seeded(self, tmp_path, captcha_dir):
        records = ds.index_images(ds.list_pngs(captcha_dir))
        vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
        save_split(records, vocabulary, tmp_path / "s", height=32, width=128, max_label_length=5)

        def order(seed):
            batches = load_split(tmp_path / "s", batch_size=40, shuffle=True, seed=seed)
            return next(iter(batches))[1].numpy().tolist()

        assert order(1) == order(1)
        assert sorted(order(1)) == sorted(order(2))


def test_encode_labels_pads_with_blank():
    encoded = encode_labels(["ab", "b"], Vocabulary("ab"), 3)
    np.testing.assert_array_equal(encoded, [[1, 2, 0], [2, 0, 0]])
    with pytest.raises(ValueError, match="longer than 3"):
        encode_labels(["abab"], Vocabulary("ab"), 3)
