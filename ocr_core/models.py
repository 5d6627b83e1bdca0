"""Captcha readers: a recipe is a model plus the input size and optimiser settings it was tuned with.

Every model maps (batch, width, height, 1) images to (batch, time, classes) logits; class 0 is
the CTC blank (see `ocr_core.ctc`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers


@dataclass(frozen=True)
class Recipe:
    """How to build and train one kind of model."""

    name: str
    height: int
    width: int
    batch_size: int
    learning_rate: float
    warmup_cosine: bool  # False: constant learning rate
    build: Callable[[int, int, int, bool, int], keras.Model]
    description: str

    def build_model(self, num_classes: int, *, augment: bool = False, seed: int = 0) -> keras.Model:
        return self.build(self.width, self.height, num_classes, augment, seed)


def _augmentation(seed: int) -> keras.Sequential:
    # Light shifts and brightness/contrast changes: real captchas vary little, so keep it gentle.
    return keras.Sequential([
        layers.RandomTranslation(0.04, 0.08, fill_mode="nearest", seed=seed),
        layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed + 1),
        layers.RandomContrast(0.2, seed=seed + 2),
    ], name="augment")


def build_crnn(width: int, height: int, num_classes: int, augment: bool, seed: int) -> keras.Model:
    """Batch-normalised CRNN: 4 conv blocks (16-32-64-128), BiGRU 96, one step per 8 columns."""
    inputs = keras.Input((width, height, 1), name="image")  # (batch, W, H, 1)
    x = _augmentation(seed)(inputs) if augment else inputs
    for filters, pool in ((16, (2, 2)), (32, (2, 2)), (64, (2, 2)), (128, (1, 2))):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    # (batch, W/8, H/16, 128) -> (batch, time=W/8, features)
    x = layers.Reshape((width // 8, (height // 16) * 128))(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Bidirectional(layers.GRU(96, return_sequences=True))(x)
    logits = layers.Dense(num_classes, name="logits")(x)  # (batch, time, classes)
    return keras.Model(inputs, logits, name="crnn")


def build_seed(width: int, height: int, num_classes: int, augment: bool, seed: int) -> keras.Model:
    """The notebook's model: Conv32-pool-Conv64-pool-Dense64-BiLSTM128-BiLSTM64, logits out."""
    inputs = keras.Input((width, height, 1), name="image")
    x = _augmentation(seed)(inputs) if augment else inputs
    x = layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_normal", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Reshape((width // 4, (height // 4) * 64))(x)  # (batch, time=W/4, features)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Bidirectional(layers.LSTM(128, return_sequences=True, dropout=0.25))(x)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True, dropout=0.25))(x)
    # The notebook ends in a softmax; logits here, since CTC loss and decoding apply it themselves.
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="seed_ocr")


RECIPES: dict[str, Recipe] = {
    "crnn": Recipe(
        name="crnn", height=32, width=128, batch_size=64, learning_rate=3e-3, warmup_cosine=True,
        build=build_crnn,
        description="batch-normalised CRNN on 128x32, Adam with warm-up and cosine decay",
    ),
    "seed": Recipe(
        name="seed", height=50, width=200, batch_size=16, learning_rate=1e-3, warmup_cosine=False,
        build=build_seed,
        description="the notebook's CNN + BiLSTM on 200x50, Adam 1e-3",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}") from None
