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
