"""The original notebook's three digit classifiers (Keras 3, channels last, input (28, 28, 1), 10 classes),
and the model folder they are saved in.

Weight initialisers and dropout take explicit seeds, so a seed reproduces a model without
touching Keras's process-global random state (trainings may run side by side in one process).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from keras import layers

from ocr_core.errors import ConfigError, ModelError
from ocr_core.files import atomic_path, read_json, write_json
from ocr_core.mnist.data import IMAGE_SIZE, NUM_CLASSES
from ocr_core.version import __version__, code_version

MODEL_FILE = "model.keras"
INFO_FILE = "bundle.json"
FORMAT = 1


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


def save_digit_model(path: str | Path, model: keras.Model, *, name: str, data_digest: str,
                     params: dict[str, Any], history: dict[str, list[float]],
                     metrics: dict[str, Any]) -> Path:
    """Write a model folder atomically: model.keras (uncompiled), bundle.json, params.json,
    history.json, metrics.json."""
    path = Path(path)
    spec = get_spec(name)
    with atomic_path(path, is_dir=True) as tmp:
        # Uncompiled: no optimizer state, loads anywhere with safe_mode.
        keras.Model(model.inputs, model.outputs, name=model.name).save(tmp / MODEL_FILE)
        write_json(tmp / INFO_FILE, {
            "format": FORMAT,
            "task": "mnist",
            "recipe": name,
            "input": {"height": IMAGE_SIZE, "width": IMAGE_SIZE, "channels": 1,
                      "layout": "channels-last", "scale": "0-1"},
            "output": "logits" if spec.from_logits else "probabilities",
            "classes": [str(digit) for digit in range(NUM_CLASSES)],
            "training_data_sha256": data_digest,
            "parameters": model.count_params(),
            "package_version": __version__,
            "code_version": code_version(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
        write_json(tmp / "params.json", params)
        write_json(tmp / "history.json", history)
        write_json(tmp / "metrics.json", metrics)
    return path


def load_digit_model(path: str | Path) -> tuple[keras.Model, dict[str, Any]]:
    """(model, bundle.json) of a folder written by `save_digit_model` (or its model.keras)."""
    path = Path(path)
    folder = path.parent if path.name == MODEL_FILE else path
    if not (folder / MODEL_FILE).is_file() or not (folder / INFO_FILE).is_file():
        raise ModelError(f"not an MNIST model folder (needs {MODEL_FILE} and {INFO_FILE}): {path}")
    info = read_json(folder / INFO_FILE)
    if info.get("task") != "mnist":
        raise ModelError(f"{folder} holds a {info.get('task', 'captcha')} model, not an MNIST one")
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as error:  # keras raises many types for a broken file
        raise ModelError(f"cannot load {folder / MODEL_FILE}: {error}") from error
    return model, info
