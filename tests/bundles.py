"""Tiny real captcha bundles whose reading is fixed by construction, for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ocr_core.captcha.synthetic import CAPTCHA_ALPHABET


def constant_reader(folder: Path, favourite_class: int, **fields: Any) -> Path:
    """A bundle whose logits favour one class (0 = blank, 1 = "2") at each of its 16 time
    steps, so it reads every captcha alike; `fields` (params, history, metrics) go to save_bundle."""
    import keras

    from ocr_core.bundle.folder import captcha_fields, save_bundle

    classes = len(CAPTCHA_ALPHABET) + 1
    inputs = keras.Input((16, 8, 1))  # (batch, width, height, 1)
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Reshape((16, 8))(inputs)))
    bias = np.zeros(classes, dtype="float32")
    bias[favourite_class] = 10.0
    dense.set_weights([np.zeros((8, classes), dtype="float32"), bias])
    return save_bundle(folder, model, captcha_fields(CAPTCHA_ALPHABET, 8, 16), recipe="crnn",
                       training_data_sha256="0" * 64, **{"params": {}, "history": {}} | fields)


def small_crnn_reader(folder: Path, seed: int = 5) -> Path:
    """A bundle of the crnn recipe's layers (batch normalisation, a bidirectional GRU) on 32x16
    images, randomly initialised with its logits scaled up, so it reads captchas differently and
    decisively (no near ties for another runtime's rounding to flip)."""
    import keras

    from ocr_core.bundle.folder import captcha_fields, save_bundle
    from ocr_core.captcha.models import build_crnn

    keras.utils.set_random_seed(seed)
    model = build_crnn(32, 16, len(CAPTCHA_ALPHABET) + 1)  # (batch, 32, 16, 1) -> (batch, 8, 20)
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 40, bias])
    return save_bundle(folder, model, captcha_fields(CAPTCHA_ALPHABET, 16, 32), recipe="crnn",
                       training_data_sha256="0" * 64, params={}, history={})


def dense_digit_reader(folder: Path, seed: int = 5) -> Path:
    """An untrained digits bundle of the notebook's dense model (logits out)."""
    from ocr_core.bundle.folder import save_bundle
    from ocr_core.mnist.models import build_model, bundle_fields

    return save_bundle(folder, build_model("dense", seed=seed), bundle_fields("dense"),
                       recipe="dense", training_data_sha256="0" * 64, params={}, history={})
