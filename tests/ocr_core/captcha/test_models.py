import keras
import numpy as np
import pytest

from ocr_core.captcha.models import build_crnn, get_recipe


def test_crnn_maps_images_to_one_step_per_four_columns():
    recipe = get_recipe("crnn")
    model = recipe.build_model(20)
    assert model.input_shape == (None, recipe.width, recipe.height, 1)
    assert model.output_shape == (None, recipe.width // 4, 20)


def test_pooling_first_computes_the_same_reader_once_trained():
    # Max-pooling commutes with ReLU and with batch norm's per-channel affine map when its scale
    # is positive: with the same weights and moving statistics the two block orders read alike.
    norm_first = build_crnn(64, 32, 12)
    pool_first = build_crnn(64, 32, 12, pool_first=True)
    rng = np.random.default_rng(0)
    for layer in norm_first.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
            layer.set_weights([rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.2, beta),
                               rng.normal(0, 0.2, mean), rng.uniform(0.5, 1.5, variance)])
        elif layer.weights:
            layer.set_weights([rng.normal(0, 0.2, w.shape) for w in layer.get_weights()])
    pool_first.set_weights(norm_first.get_weights())  # the weighted layers come in the same order
    images = rng.uniform(0, 1, (3, 64, 32, 1)).astype("float32")

    expected = keras.ops.convert_to_numpy(norm_first(images, training=False))
    np.testing.assert_allclose(pool_first(images, training=False), expected, rtol=1e-4, atol=1e-4)

    batch_norms = [layer for layer in pool_first.layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    gamma, *rest = batch_norms[0].get_weights()
    batch_norms[0].set_weights([-gamma, *rest])  # a negative scale: max and norm no longer commute
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(pool_first(images, training=False), expected, rtol=1e-4,
                                   atol=1e-4)
