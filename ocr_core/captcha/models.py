"""Captcha readers: a recipe is a model plus the input size and optimiser settings it was tuned with.

Every model maps (batch, width, height, 1) images to (batch, time, classes) logits; class 0 is
the CTC blank (see `ocr_core.captcha.ctc`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from ocr_core.captcha.input_sizes import INPUT_SIZES
from ocr_core.captcha.recipe_names import check_recipe_name
from ocr_core.training.batch_norm import FusedBatchNormalization


@dataclass(frozen=True)
class Recipe:
    """How to build and train one kind of model."""

    name: str
    height: int
    width: int
    batch_size: int
    learning_rate: float
    warmup_cosine: bool  # False: constant learning rate
    build: Callable[[int, int, int], keras.Model]  # (width, height, classes) -> model
    description: str

    def build_model(self, num_classes: int) -> keras.Model:
        return self.build(self.width, self.height, num_classes)


def build_crnn(width: int, height: int, num_classes: int, *, columns_per_step: int = 4,
               pool_first: bool = False) -> keras.Model:
    """Batch-normalised CRNN: 4 conv blocks (16-32-64-128), BiGRU 96, one step per 4 columns.

    The text of a captcha fills about 60% of its width: at one step per 8 columns a character gets
    two steps, and a doubled one ("nn" needs n, blank, n) was the most common misread. Batch norm
    trains through TensorFlow's fused kernel (`FusedBatchNormalization`); bundles keep Keras's.

    Args:
        pool_first: each block pools before batch norm and ReLU (conv-pool-norm-ReLU) instead
            of after. Normalising the pooled values cost 16% less training CPU per image with
            Keras's unfused batch norm, but each epoch reads a little worse: per CPU second the
            two orders read the same (BENCHMARKS.md, "block order"), and the recipe keeps its own.
    """
    inputs = keras.Input((width, height, 1), name="image")  # (batch, W, H, 1)
    x = inputs
    width_pools = {8: (2, 2, 2, 1), 4: (2, 2, 1, 1)}[columns_per_step]
    for filters, width_pool in zip((16, 32, 64, 128), width_pools, strict=True):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        if pool_first:
            x = layers.MaxPooling2D((width_pool, 2))(x)
        x = FusedBatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if not pool_first:
            x = layers.MaxPooling2D((width_pool, 2))(x)
    # (batch, W/columns_per_step, H/16, 128) -> (batch, time, features)
    x = layers.Reshape((width // columns_per_step, (height // 16) * 128))(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Bidirectional(layers.GRU(96, return_sequences=True))(x)
    logits = layers.Dense(num_classes, name="logits")(x)  # (batch, time, classes)
    return keras.Model(inputs, logits, name="crnn")


def build_keras_example(width: int, height: int, num_classes: int) -> keras.Model:
    """The keras.io captcha OCR example's model (the original notebook's), logits out:
    Conv32-pool-Conv64-pool-Dense64-BiLSTM128-BiLSTM64."""
    inputs = keras.Input((width, height, 1), name="image")
    x = layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal", padding="same")(inputs)
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
    return keras.Model(inputs, logits, name="keras_example_ocr")


RECIPES: dict[str, Recipe] = {
    "crnn": Recipe(
        name="crnn", height=INPUT_SIZES["crnn"].height, width=INPUT_SIZES["crnn"].width,
        batch_size=32, learning_rate=3e-3, warmup_cosine=True,
        build=build_crnn,
        description="batch-normalised CRNN on 128x32 (32 CTC steps), Adam with warm-up and "
        "cosine decay",
    ),
    "keras_example": Recipe(
        name="keras_example", height=INPUT_SIZES["keras_example"].height,
        width=INPUT_SIZES["keras_example"].width, batch_size=16, learning_rate=1e-3,
        warmup_cosine=False, build=build_keras_example,
        description="the keras.io captcha OCR example's CNN + BiLSTM on 200x50, Adam 1e-3",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`."""
    try:
        return RECIPES[check_recipe_name(name)]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}") from None
