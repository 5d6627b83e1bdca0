"""Captcha rendering + preprocessing for gpu_recipes.py, in worker processes (no jax/keras/tf here).

Images come from ocr_core.captcha.synthetic (same chunks, same render seeds => byte-identical PNGs
to `generate_captchas`). Preprocessing mirrors ocr_core/captcha/pipeline.py with numpy:
tf.io.decode_png(channels=1) ~ libpng's Rec.601 integer grey (matches TF on 99.9% of pixels,
others by 1/255), convert_image_dtype -> /255, tf.image.resize bilinear (half-pixel centres, no
antialias) as a separable matrix, clip to [0, 1], saved as uint8 like save_split
(convert_image_dtype float->uint8: trunc(x * 255.5)), layout (width, height).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 32, 128


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights as tf.image.resize (half_pixel_centers, no antialias)."""
    scale = n_in / n_out
    m = np.zeros((n_out, n_in), dtype=np.float64)
    for o in range(n_out):
        f = (o + 0.5) * scale - 0.5
        lo = int(np.floor(f))
        lerp = f - lo
        lower, upper = max(lo, 0), min(int(np.ceil(f)), n_in - 1)
        m[o, lower] += 1.0 - lerp
        m[o, upper] += lerp
    return m.astype(np.float32)


_RH = resize_matrix(50, HEIGHT)
_RW = resize_matrix(200, WIDTH)


def preprocess_png(png: bytes) -> np.ndarray:
    """PNG bytes -> (WIDTH, HEIGHT) uint8, as the product's saved split holds it."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)
    grey = (rgb[..., 0] * 9798 + rgb[..., 1] * 19235 + rgb[..., 2] * 3735) >> 15
    x = grey.astype(np.float32) * np.float32(1 / 255)
    x = _RH @ x @ _RW.T  # (HEIGHT, WIDTH)
    x = np.clip(x, 0.0, 1.0)
    return np.floor(x * np.float32(255.5)).astype(np.uint8).T  # (WIDTH, HEIGHT)


def render_chunk(labels: list[str], render_seed: str) -> tuple[np.ndarray, list[str]]:
    from ocr_core.captcha.synthetic import CaptchaGenerator

    generator = CaptchaGenerator(render_seed)
    images = np.stack([preprocess_png(generator.png_bytes(label)) for label in labels])
    return images, labels
