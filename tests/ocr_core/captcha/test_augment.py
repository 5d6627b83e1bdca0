import numpy as np
import tensorflow as tf

from ocr_core.captcha.augment import augment_batch
from ocr_core.captcha.ctc import Vocabulary
from ocr_core.captcha.pipeline import load_split, save_split
from ocr_core.data import dataset as ds


def _text_like(batch: int = 4, width: int = 128, height: int = 32) -> tf.Tensor:
    """Light images with a dark bar in the middle, (batch, width, height, 1) as the model sees them."""
    images = np.ones((batch, width, height, 1), "float32")
    images[:, 40:90, 12:20] = 0.0
    return tf.constant(images)


class TestAugmentBatch:
    def test_keeps_shape_and_range(self):
        out = augment_batch(_text_like(), tf.constant([1, 2]))
        assert out.shape == (4, 128, 32, 1)
        assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0

    def test_same_seed_same_pixels_other_seed_other_pixels(self):
        first = augment_batch(_text_like(), tf.constant([1, 2]))
        np.testing.assert_array_equal(first, augment_batch(_text_like(), tf.constant([1, 2])))
        assert float(tf.reduce_mean(tf.abs(first - augment_batch(_text_like(), tf.constant([1, 3]))))) > 0.01

    def test_each_image_of_a_batch_gets_its_own_distortion(self):
        out = augment_batch(_text_like(), tf.constant([5, 6])).numpy()
        assert not np.allclose(out[0], out[1])

    def test_the_text_survives(self):
        out = augment_batch(_text_like(), tf.constant([7, 8])).numpy()
        # The dark bar is moved and blurred a little, never wiped out or flooded everywhere.
        dark_share = (out < 0.5).mean(axis=(1, 2, 3))
        assert np.all((0.03 < dark_share) & (dark_share < 0.3)), dark_share


def test_training_batches_change_every_epoch_and_repeat_with_the_seed(tmp_path, captcha_dir):
    records = ds.index_images(ds.list_pngs(captcha_dir))[:8]
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
    save_split(records, vocabulary, tmp_path / "train", height=32, width=128, max_label_length=5)

    def epochs(seed: int) -> list[np.ndarray]:
        dataset = load_split(tmp_path / "train", 8, augment=True, seed=seed)
        return [next(iter(dataset))[0].numpy() for _ in range(2)]

    first, second = epochs(seed=3)
    assert not np.allclose(first, second)
    again = epochs(seed=3)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])
    plain = next(iter(load_split(tmp_path / "train", 8)))[0].numpy()
    assert not np.allclose(first, plain)
