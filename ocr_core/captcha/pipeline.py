"""tf.data input pipelines: PNG -> grey float32 in [0, 1] -> (width, height, 1), width = time axis.

Decoding is paid once: `save_split` writes the preprocessed images (uint8) and encoded labels
with `tf.data.Dataset.save`; `load_split` reads them back for every epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ocr_core.captcha.augment import augment_batch
from ocr_core.captcha.ctc import BLANK_INDEX, Vocabulary
from ocr_core.data.dataset import ImageRecord


def decode_image(png_bytes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """PNG bytes (L, RGB or RGBA) -> (width, height, 1) float32 in [0, 1]."""
    return to_model_layout(decode_resized(png_bytes, height, width))


def decode_resized(png_bytes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """PNG bytes (L, RGB or RGBA) -> (height, width, 1) float32, before `to_model_layout`."""
    image = tf.io.decode_png(png_bytes, channels=1)  # grey; alpha is dropped
    image = tf.image.convert_image_dtype(image, tf.float32)
    return tf.image.resize(image, [height, width])


def to_model_layout(images: tf.Tensor) -> tf.Tensor:
    """(..., height, width, 1) resized images -> (..., width, height, 1) in [0, 1].

    Works on one image or a batch: batched readers call it once per batch, not per image.
    """
    images = tf.clip_by_value(images, 0.0, 1.0)  # bilinear resizing can overshoot slightly
    rank = images.shape.rank
    return tf.transpose(images, perm=[*range(rank - 3), rank - 2, rank - 3, rank - 1])


def load_image(path: str | Path | tf.Tensor, height: int, width: int) -> tf.Tensor:
    """One PNG file as a model input of shape (width, height, 1)."""
    if not isinstance(path, tf.Tensor):
        path = str(path)
    return decode_image(tf.io.read_file(path), height, width)


def encode_labels(labels: list[str], vocabulary: Vocabulary, max_length: int) -> np.ndarray:
    """(n, max_length) int32 class indices, padded with BLANK_INDEX."""
    encoded = np.full((len(labels), max_length), BLANK_INDEX, dtype="int32")
    for row, label in enumerate(labels):
        if len(label) > max_length:
            raise ValueError(f"label {label!r} is longer than {max_length} characters")
        encoded[row, : len(label)] = vocabulary.encode(label)
    return encoded


def save_split(
    records: list[ImageRecord],
    vocabulary: Vocabulary,
    out_dir: str | Path,
    *,
    height: int,
    width: int,
    max_label_length: int,
) -> int:
    """Decode, resize and encode `records` once and save them as a tf.data snapshot; returns n."""
    labels = encode_labels([r.label for r in records], vocabulary, max_label_length)
    paths = tf.data.Dataset.from_tensor_slices([r.path for r in records])
    images = paths.map(
        lambda p: tf.image.convert_image_dtype(load_image(p, height, width), tf.uint8,
                                               saturate=True),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(labels))
    dataset.save(str(out_dir))
    return len(records)


def count_split(path: str | Path) -> int:
    """Number of images in a saved split."""
    return int(tf.data.Dataset.load(str(path)).cardinality())


def _to_float(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.image.convert_image_dtype(image, tf.float32), label


def load_split(
    path: str | Path, batch_size: int, *, shuffle: bool = False, augment: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """A saved split as batches of ((batch, width, height, 1) float32, (batch, max_len) int32).

    `shuffle` reshuffles every epoch; `augment` distorts every training batch anew
    (`ocr_core.captcha.augment`). Both are seeded by `seed`.
    """
    dataset = tf.data.Dataset.load(str(path)).map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.cache()
    if shuffle:
        size = int(dataset.cardinality())
        dataset = dataset.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment:
        # One random number per batch, a new seeded sequence each epoch: every epoch draws new
        # distortions, and the run stays reproducible.
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(draws, dataset).map(
            lambda draw, batch: (augment_batch(batch[0], tf.stack([tf.cast(seed, tf.int64), draw])),
                                 batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
