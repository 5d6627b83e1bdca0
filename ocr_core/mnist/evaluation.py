"""Score a digit model on a labelled set: loss, accuracy, error %, confusion matrix, misreads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ocr_core.mnist.data import NUM_CLASSES
from ocr_core.mnist.pipeline import BATCH_SIZE, evaluation_pipeline


@dataclass(frozen=True)
class DigitEvaluation:
    """Scores of a model on `count` images; `predictions` (count,) line up with the labels."""

    loss: float
    accuracy: float
    confusion: np.ndarray  # (true class, predicted class) counts, (10, 10)
    predictions: np.ndarray

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def error_percent(self) -> float:
        """100 - accuracy in percent (the notebook prints it as "CNN Error: x%")."""
        return 100.0 * (1.0 - self.accuracy)

    def as_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "error_percent": self.error_percent,
                "count": self.count, "confusion_matrix": self.confusion.tolist()}


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def probabilities(model: keras.Model, images: np.ndarray, *, from_logits: bool,
                  batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Class probabilities (count, 10) for (count, 28, 28) uint8 images."""
    dataset = evaluation_pipeline(images, np.zeros(len(images), np.int64),
                                  batch_size=batch_size).map(lambda image, _: image)
    outputs = model.predict(dataset, verbose=0)
    return keras.ops.convert_to_numpy(keras.ops.softmax(outputs)) if from_logits else outputs


def evaluate_digits(model: keras.Model, images: np.ndarray, labels: np.ndarray, *,
                    from_logits: bool, batch_size: int = BATCH_SIZE) -> DigitEvaluation:
    """Mean cross-entropy, accuracy and confusion matrix of `model` on (count, 28, 28) images."""
    probs = probabilities(model, images, from_logits=from_logits, batch_size=batch_size)
    labels = np.asarray(labels, dtype=np.int64)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    predictions = probs.argmax(axis=1)
    return DigitEvaluation(
        loss=float(-np.log(picked).mean()),
        accuracy=float((predictions == labels).mean()),
        confusion=confusion_matrix(labels, predictions),
        predictions=predictions,
    )
