import numpy as np
import tensorflow as tf

from ocr_core.mnist.pipeline import evaluation_pipeline, normalize_img, training_pipeline
from ocr_core.mnist.sources import read_local_copy


def test_normalize_img_scales_to_unit_range():
    image, label = normalize_img(tf.constant([[0, 128, 255]], tf.uint8), tf.constant(7))
    assert image.dtype == tf.float32
    np.testing.assert_allclose(image.numpy(), [[0.0, 128 / 255, 1.0]])
    assert int(label) == 7


class TestTrainingPipeline:
    def test_batches_from_the_idx_loader(self, mnist_dir):
        arrays = read_local_copy(mnist_dir)
        batches = list(training_pipeline(arrays.x_train, arrays.y_train, batch_size=128, seed=0))
        assert [int(images.shape[0]) for images, _ in batches] == [128, 128, 44]
        images, labels = batches[0]
        assert images.shape == (128, 28, 28, 1) and images.dtype == tf.float32
        assert labels.dtype == tf.int64
        pixels = np.concatenate([b[0].numpy().ravel() for b in batches])
        assert pixels.min() >= 0.0 and pixels.max() <= 1.0 and pixels.max() > 0.9

    def test_every_example_once_per_epoch_in_a_new_order(self):
        images = np.repeat(np.arange(50, dtype=np.uint8), 28 * 28).reshape(50, 28, 28)
        pipeline = training_pipeline(images, np.arange(50) % 10, batch_size=16, seed=1)
        epochs = [np.concatenate([b.numpy()[:, 0, 0, 0] for b, _ in pipeline]) for _ in range(2)]
        for order in epochs:
            np.testing.assert_allclose(np.sort(order), np.arange(50) / 255.0)
        assert not np.array_equal(epochs[0], epochs[1])


def test_evaluation_pipeline_keeps_order():
    images = np.repeat(np.arange(30, dtype=np.uint8), 28 * 28).reshape(30, 28, 28)
    labels = np.arange(30) % 10
    batches = list(evaluation_pipeline(images, labels, batch_size=8))
    assert [int(b.shape[0]) for b, _ in batches] == [8, 8, 8, 6]
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), labels)
    np.testing.assert_allclose(np.concatenate([b.numpy()[:, 0, 0, 0] for b, _ in batches]),
                               np.arange(30) / 255.0)
