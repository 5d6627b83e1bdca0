import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ocr_core.training.batch_norm import FusedBatchNormalization, with_keras_batch_norm


def twin_layers(shape, **options):
    """Keras's batch norm and the fused one, built for `shape` with the same random weights."""
    rng = np.random.default_rng(0)
    keras_norm = keras.layers.BatchNormalization(**options)
    fused_norm = FusedBatchNormalization(**options)
    for layer in (keras_norm, fused_norm):
        layer.build(shape)
    channels = shape[-1]
    weights = [rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.3, channels),
               rng.normal(0, 0.3, channels), rng.uniform(0.5, 1.5, channels)]
    keras_norm.set_weights(weights)
    fused_norm.set_weights(weights)
    return keras_norm, fused_norm


def training_step(layer, inputs):
    """Outputs, gradients of a weighted sum of them (inputs, scale, offset), moving statistics."""
    weight = tf.constant(np.random.default_rng(1).normal(size=inputs.shape), tf.float32)
    x = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, training=True)
        loss = tf.reduce_sum(outputs * weight)
    grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
    return [np.asarray(outputs), *(np.asarray(g) for g in grads),
            np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)]


@pytest.mark.parametrize("shape", [(8, 16, 6, 5), (2, 3, 3, 4)])
def test_a_training_step_computes_what_keras_batch_norm_does(shape):
    # outputs, the three gradients and the moving statistics (the biased variance, as Keras keeps)
    keras_norm, fused_norm = twin_layers(shape, momentum=0.9)
    inputs = np.random.default_rng(2).normal(1.0, 2.0, shape).astype("float32")
    expected = training_step(keras_norm, inputs)
    for name, got, want in zip(("outputs", "d inputs", "d scale", "d offset", "moving mean",
                                "moving variance"), training_step(fused_norm, inputs), expected,
                               strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_the_kernel_runs_in_training_and_keras_code_elsewhere():
    shape = (4, 8, 4, 3)
    inputs = tf.constant(np.random.default_rng(3).normal(size=shape).astype("float32"))
    fused_norm = FusedBatchNormalization()
    fused_norm.build(shape)
    graph = tf.function(lambda x, training: fused_norm(x, training=training))
    ops = lambda training: {op.type for op in  # noqa: E731
                            graph.get_concrete_function(inputs, training).graph.get_operations()}
    assert "FusedBatchNormV3" in ops(True)
    assert "FusedBatchNormV3" not in ops(False)


def test_inputs_the_kernel_does_not_take_go_through_keras():
    # rank 3 (a sequence of features): the kernel takes 4-D NHWC only
    keras_norm, fused_norm = twin_layers((4, 7, 5))
    inputs = np.random.default_rng(4).normal(size=(4, 7, 5)).astype("float32")
    for got, want in zip(training_step(fused_norm, inputs), training_step(keras_norm, inputs),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def fused_model() -> keras.Model:
    inputs = keras.Input((12, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = FusedBatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))


def test_the_keras_copy_computes_the_same_and_loads_without_this_package(tmp_path):
    model = fused_model()
    images = np.random.default_rng(5).uniform(size=(6, 12, 8, 1)).astype("float32")
    model(images, training=True)  # moves the statistics away from their initial values
    plain = with_keras_batch_norm(model)

    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert [type(layer) for layer in plain.layers].count(keras.layers.BatchNormalization) == 1
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(plain(images, training=False), expected, rtol=1e-6, atol=1e-6)

    plain.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    read = subprocess.run(
        [sys.executable, "-c",
         "import sys, keras, numpy as np; "
         "m = keras.saving.load_model(sys.argv[1], compile=False, safe_mode=True); "
         "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]), training=False))); "
         "assert not [name for name in sys.modules if name.startswith('ocr_core')]",
         str(tmp_path / "model.keras"), str(tmp_path / "images.npy"), str(tmp_path / "out.npy")],
        capture_output=True, text=True, cwd=tmp_path)
    assert read.returncode == 0, read.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-6, atol=1e-6)
