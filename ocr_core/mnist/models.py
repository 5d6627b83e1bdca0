"""The original notebook's three digit classifiers (Keras 3, channels last, input (28, 28, 1), 10 classes),
and the fields of the bundle they are saved in (`ocr_core.bundle.folder`, kind `digits`).

Weight initialisers and dropout take explicit seeds, so a seed reproduces a model without
touching Keras's process-global random state (trainings may run side by side in one process).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from ocr_core.bundle.folder import digits_fields
from ocr_core.errors import ConfigError
from ocr_core.mnist.data import IMAGE_SIZE, NUM_CLASSES


@dataclass(frozen=True)
class DigitModelSpec:
    """One of the original notebook's models: how to build it and whether it outputs logits."""

    name: str
    description: str
    from_logits: bool
    build: Callable[[int], keras.Model]


class _Seeds:
    """Distinct, reproducible seeds for each layer of one model."""

    def __init__(self, seed: int) -> None:
        self.next_seed = seed * 1000

    def __call__(self) -> int:
        self.next_seed += 1
        return self.next_seed

    def kernel(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=self())


def _input() -> keras.KerasTensor:
    return keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")  # (batch, 28, 28, 1)


def build_dense(seed: int) -> keras.Model:
    """Flatten - Dense 128 relu - Dense 10 (logits): the tfds tutorial's model."""
    seeds = _Seeds(seed)
    inputs = _input()
    x = layers.Flatten()(inputs)
    x = layers.Dense(128, activation="relu", kernel_initializer=seeds.kernel())(x)
    logits = layers.Dense(NUM_CLASSES, kernel_initializer=seeds.kernel(), name="logits")(x)
    return keras.Model(inputs, logits, name="dense")


def build_simple_cnn(seed: int) -> keras.Model:
    """Conv 32 5x5 - max pool - dropout 0.2 - flatten - Dense 128 - softmax 10."""
    seeds = _Seeds(seed)
    inputs = _input()
    x = layers.Conv2D(32, 5, activation="relu", kernel_initializer=seeds.kernel())(inputs)
    x = layers.MaxPooling2D()(x)  # (batch, 12, 12, 32)
    x = layers.Dropout(0.2, seed=seeds())(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", kernel_initializer=seeds.kernel())(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=seeds.kernel(),
                           name="probabilities")(x)
    return keras.Model(inputs, outputs, name="simple_cnn")


def build_larger_cnn(seed: int) -> keras.Model:
    """Conv 30 5x5 - pool - conv 15 3x3 - pool - dropout 0.2 - flatten - Dense 128 - Dense 50 -
    softmax 10."""
    seeds = _Seeds(seed)
    inputs = _input()
    x = layers.Conv2D(30, 5, activation="relu", kernel_initializer=seeds.kernel())(inputs)
    x = layers.MaxPooling2D()(x)  # (batch, 12, 12, 30)
    x = layers.Conv2D(15, 3, activation="relu", kernel_initializer=seeds.kernel())(x)
    x = layers.MaxPooling2D()(x)  # (batch, 5, 5, 15)
    x = layers.Dropout(0.2, seed=seeds())(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", kernel_initializer=seeds.kernel())(x)
    x = layers.Dense(50, activation="relu", kernel_initializer=seeds.kernel())(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=seeds.kernel(),
                           name="probabilities")(x)
    return keras.Model(inputs, outputs, name="larger_cnn")


SPECS = {spec.name: spec for spec in (
    DigitModelSpec("dense", "Flatten-Dense128-Dense10 (logits)", True, build_dense),
    DigitModelSpec("simple_cnn", "Conv32 5x5-pool-dropout-Dense128-softmax", False,
                   build_simple_cnn),
    DigitModelSpec("larger_cnn", "Conv30 5x5-pool-Conv15 3x3-pool-dropout-Dense128-Dense50-softmax",
                   False, build_larger_cnn),
)}
MODEL_NAMES = tuple(SPECS)


def get_spec(name: str) -> DigitModelSpec:
    """The spec called `name`, or a ConfigError listing the choices."""
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown MNIST model {name!r}; choose from {', '.join(MODEL_NAMES)}") from None


def build_model(name: str, *, seed: int = 0, learning_rate: float = 1e-3) -> keras.Model:
    """A new model `name`, compiled with Adam and sparse categorical cross-entropy."""
    spec = get_spec(name)
    model = spec.build(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=spec.from_logits),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def bundle_fields(name: str) -> dict[str, Any]:
    """The bundle.json fields of model `name` (`ocr_core.bundle.folder.save_bundle`)."""
    return digits_fields(from_logits=get_spec(name).from_logits, size=IMAGE_SIZE,
                         classes=[str(digit) for digit in range(NUM_CLASSES)])
