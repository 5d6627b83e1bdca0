"""Batch norm that trains through TensorFlow's fused kernel, and the way back to Keras's own layer.

Keras 3 normalises a batch in separate ops (moments, subtract, scale, shift) and differentiates
each: on the crnn recipe that is about a fifth of a training step's CPU. TensorFlow's
`FusedBatchNormV3` does the same arithmetic, forward and backward, in one kernel each.
`FusedBatchNormalization` keeps Keras's weights, options and moving-statistics rule and only
swaps the training pass; `with_keras_batch_norm` gives the model back with Keras's layer, so a
saved model needs nothing of this package to load (BENCHMARKS.md, "fused batch norm").
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="ocr_core")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training pass is TensorFlow's fused kernel.

    The same normalisation, learned scale and offset, and moving statistics (momentum-weighted,
    with the batch's biased variance, as Keras updates them). Inference, and any case the kernel
    does not cover (another backend, a rank other than 4, a channel axis other than the last, a
    dtype other than float32, a mask, renorm, synchronised statistics, no scale or no centre),
    run Keras's own code.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=self.gamma, offset=self.beta, mean=tf.zeros_like(self.gamma),
            variance=tf.ones_like(self.gamma), epsilon=self.epsilon, exponential_avg_factor=1.0,
            data_format="NHWC", is_training=True)
        # The kernel reports the batch variance with Bessel's correction; Keras keeps the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                and self.scale and self.center and not self.renorm and not self.synchronized)


def with_keras_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of functional `model` with Keras's batch norm in place of each
    `FusedBatchNormalization`, every weight kept: it computes the same and loads without this
    package. Uncompiled."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        kind = (keras.layers.BatchNormalization if isinstance(layer, FusedBatchNormalization)
                else type(layer))
        return kind.from_config(layer.get_config())

    plain = keras.models.clone_model(model, clone_function=clone)
    plain.set_weights(model.get_weights())
    return plain
