"""What the MNIST tasks hand each other (`tasks.records` describes records in general)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.records import Output, TrainedModel


@dataclass(frozen=True)
class MnistSource(Output):
    """Where MNIST will be read from (a local copy, or the download cache of tfds/keras);
    `content_digest` identifies the content the source delivers."""

    LOCATIONS = ("mnist_path",)  # `path` names where it will be read on the machine that checked

    source: str = ""
    mnist_path: str | None = None  # local copy, or tfds's folder of official .gz files

    def outputs(self) -> list[str]:
        return []


@dataclass(frozen=True)
class DigitData(Output):
    """MNIST in the canonical `.npz` (x_train, y_train, x_test, y_test); `content_digest` hashes
    the arrays."""

    source: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DigitModel(TrainedModel):
    """A trained MNIST model: a bundle of kind `digits` (`ocr_core.bundle.folder`)."""

    name: str = ""
    parameters: int = 0

    @staticmethod
    def kind_fields(info: dict[str, Any]) -> dict[str, Any]:
        return {"name": info["recipe"], "parameters": info["parameters"]}


@dataclass(frozen=True)
class DigitEvaluationReport(Output):
    """Test metrics JSON of an MNIST model, with its confusion matrix and misread-digit plots."""

    LOCATIONS = ("path", "confusion_plot", "misclassified_plot")

    model: str = ""
    confusion_plot: str = ""
    misclassified_plot: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def outputs(self) -> list[str]:
        return [self.path, self.confusion_plot, self.misclassified_plot]
