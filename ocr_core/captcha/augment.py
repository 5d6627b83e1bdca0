"""Training-time augmentation for captchas, as tf.data ops (the saved model stays augmentation-free).

Real captcha_images_v2 files differ from each other in small ways: where the text sits, a slight
slant, stroke width, blur and the noise line. Each image of a batch gets its own random affine
warp (shift, rotation, shear, scale), blur, stroke thickening or thinning, noise and contrast.
Randomness is stateless, derived from the seed and one seeded random draw per batch, so a training
run from the start is reproducible. A resumed run starts the data's iteration over, so it draws
other distortions (and another order) than the uninterrupted run would have: the two agree within
noise, not bit for bit (see `ocr_core.training.resume`).
"""

from __future__ import annotations

import math

import tensorflow as tf

MAX_SHIFT = (0.05, 0.10)  # fraction of (width, height)
MAX_ROTATION = math.radians(4.0)
MAX_SHEAR = 0.2
SCALE_RANGE = (0.9, 1.1)
MAX_NOISE = 0.04

# A list, not a tensor: a tensor made at import would start TensorFlow's runtime, after which
# a Dask worker can no longer cap its threads (`configure_threads`).
_GAUSSIAN_3X3 = [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]]


def _uniform(seed: tf.Tensor, salt: int, shape, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed + [0, salt * 1_000_003], minval=low,
                                       maxval=high)


def _affine_transforms(seed: tf.Tensor, batch: tf.Tensor, width: int, height: int) -> tf.Tensor:
    """(batch, 8) projective transforms mapping output pixels (x=column, y=row) to input pixels."""
    angle = _uniform(seed, 1, [batch], -MAX_ROTATION, MAX_ROTATION)
    shear = _uniform(seed, 2, [batch], -MAX_SHEAR, MAX_SHEAR)
    scale = _uniform(seed, 3, [batch], *SCALE_RANGE)
    shift_x = _uniform(seed, 4, [batch], -MAX_SHIFT[0], MAX_SHIFT[0]) * width
    shift_y = _uniform(seed, 5, [batch], -MAX_SHIFT[1], MAX_SHIFT[1]) * height
    cos, sin = tf.cos(angle), tf.sin(angle)
    # scale * rotation @ horizontal shear, applied about the image centre
    a0, a1 = scale * cos, scale * (cos * shear - sin)
    b0, b1 = scale * sin, scale * (sin * shear + cos)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx + shift_x - a0 * cx - a1 * cy
    b2 = cy + shift_y - b0 * cx - b1 * cy
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _blend(images: tf.Tensor, other: tf.Tensor, amount: tf.Tensor) -> tf.Tensor:
    return images + amount[:, None, None, None] * (other - images)


def augment_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Randomly distort a batch of model inputs.

    Args:
        images: (batch, width, height, 1) float32 in [0, 1], dark text on a light background.
        seed: int32 or int64 tensor of shape (2,), e.g. (run seed, batch index).

    Returns:
        A tensor of the same shape and range.
    """
    seed = tf.cast(seed, tf.int64)
    batch = tf.shape(images)[0]
    upright = tf.transpose(images, [0, 2, 1, 3])  # (batch, height, width, 1): image layout
    height, width = upright.shape[1], upright.shape[2]
    upright = tf.raw_ops.ImageProjectiveTransformV3(
        images=upright, transforms=_affine_transforms(seed, batch, width, height),
        output_shape=tf.shape(upright)[1:3], fill_value=1.0, interpolation="BILINEAR",
        fill_mode="NEAREST")
    blurred = tf.nn.depthwise_conv2d(
        upright, tf.reshape(tf.constant(_GAUSSIAN_3X3, tf.float32), [3, 3, 1, 1]), [1, 1, 1, 1], "SAME")
    upright = _blend(upright, blurred, _uniform(seed, 6, [batch], 0.0, 1.0))
    # Thicker strokes are a min filter (text is dark), thinner ones a max filter.
    thicker = -tf.nn.max_pool2d(-upright, 3, 1, "SAME")
    thinner = tf.nn.max_pool2d(upright, 3, 1, "SAME")
    stroke = _uniform(seed, 7, [batch], -1.0, 1.0)
    upright = _blend(upright, thicker, tf.nn.relu(stroke) * 0.6)
    upright = _blend(upright, thinner, tf.nn.relu(-stroke) * 0.6)
    contrast = _uniform(seed, 8, [batch, 1, 1, 1], 0.8, 1.2)
    brightness = _uniform(seed, 9, [batch, 1, 1, 1], -0.08, 0.08)
    mean = tf.reduce_mean(upright, axis=[1, 2, 3], keepdims=True)
    upright = (upright - mean) * contrast + mean + brightness
    noise = tf.random.stateless_normal(tf.shape(upright), seed=seed + [0, 10_000_019])
    upright = upright + noise * _uniform(seed, 11, [batch, 1, 1, 1], 0.0, MAX_NOISE)
    return tf.transpose(tf.clip_by_value(upright, 0.0, 1.0), [0, 2, 1, 3])
