"""The original notebook's tf.data pipelines: normalize -> cache -> shuffle -> batch -> prefetch for training;
normalize -> batch -> cache -> prefetch, in order, for evaluation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

BATCH_SIZE = 128


def normalize_img(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 pixels 0-255 -> float32 in [0, 1]; the label passes through."""
    return tf.cast(image, tf.float32) / 255.0, label


def _examples(images: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    # (count, 28, 28) -> (count, 28, 28, 1): the models are channels-last.
    return tf.data.Dataset.from_tensor_slices((images[..., np.newaxis], labels.astype(np.int64)))


def training_pipeline(images: np.ndarray, labels: np.ndarray, *, batch_size: int = BATCH_SIZE,
                      seed: int | None = None) -> tf.data.Dataset:
    """Shuffled batches of ((batch, 28, 28, 1) float32 in [0, 1], (batch,) int64), reshuffled
    each epoch over the whole set."""
    return (_examples(images, labels)
            .map(normalize_img, num_parallel_calls=tf.data.AUTOTUNE)
            .cache()
            .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


def evaluation_pipeline(images: np.ndarray, labels: np.ndarray, *,
                        batch_size: int = BATCH_SIZE) -> tf.data.Dataset:
    """Batches in the arrays' order (predictions line up with `labels`), cached after batching."""
    return (_examples(images, labels)
            .map(normalize_img, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .cache()
            .prefetch(tf.data.AUTOTUNE))
