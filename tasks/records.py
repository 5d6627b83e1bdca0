"""What tasks hand each other: paths to files they wrote, and what identifies their content.

A record carries a `content_digest` (a sha256 of its content: images' labels and bytes, a file's
bytes) where one is known, else the `step_key` of the step that wrote it (the same key, the same
content); later steps' keys take its `identity`, whichever it has.

Records are small and picklable, so Prefect can hash and persist them. A record names the roots
its files were written under (`root`: the results root; `images_root`: the folder of images it
indexes); a cached record read under other roots is `relocated` onto the current ones, and one
whose files are gone is not served (`tasks.caching.StepPolicy` decides both).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from ocr_core.files import read_json


@dataclass(frozen=True)
class Output:
    """Base record: `path` is the file or folder a task wrote.

    `content_digest`: sha256 (hex, or its first 24 digits) of the content, where known.
    `step_key`: the key of the step that wrote it (`tasks.caching`), for a step's output.
    `root`: the results root the files were written under (set by `tasks.caching` for every
    step with a `results_dir`; empty for a record of a user's folder). Not content: never keyed.
    """

    path: str
    content_digest: str = ""
    step_key: str = field(default="", kw_only=True)
    root: str = field(default="", kw_only=True)

    @property
    def identity(self) -> str:
        """What later steps' keys take from this record: its content digest, else its step key."""
        return self.content_digest or self.step_key

    def files(self) -> list[str]:
        """Paths that must exist for the record to be usable."""
        return [self.path]

    def missing_files(self) -> list[str]:
        """The files of `files()` that are not there (now)."""
        return [path for path in self.files() if path and not Path(path).exists()]

    def relocated(self, moves: dict[str, str]) -> Self:
        """This record with every path under an old root of `moves` put under the new one
        (the roots themselves included)."""
        changes = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, str) and (moved := _moved(value, moves)) != value:
                changes[item.name] = moved
        return dataclasses.replace(self, **changes) if changes else self


def _moved(path: str, moves: dict[str, str]) -> str:
    for old, new in moves.items():
        if path == old:
            return new
        if path.startswith(old.rstrip(os.sep) + os.sep):
            return new.rstrip(os.sep) + path[len(old.rstrip(os.sep)):]
    return path


@dataclass(frozen=True)
class ImageFolder(Output):
    """A folder of `<label>.png` captchas."""

    count: int = 0


@dataclass(frozen=True)
class Manifest(Output):
    """An index of images (path, label, sha256) and its character vocabulary."""

    count: int = 0
    vocabulary: str = ""
    report: str | None = None  # validation report (JSON), when the images were validated
    images_root: str = ""  # the folder its image paths are relative to

    def files(self) -> list[str]:
        return [self.path] + ([self.report] if self.report else [])


@dataclass(frozen=True)
class Split(Output):
    """A train/validation/test split manifest."""

    counts: dict[str, int] = field(default_factory=dict)
    vocabulary: str = ""
    images_root: str = ""  # the folder its image paths are relative to


@dataclass(frozen=True)
class Datasets(Output):
    """Preprocessed tf.data snapshots of each split, for one input size."""

    height: int = 0
    width: int = 0
    vocabulary: str = ""
    max_label_length: int = 0
    split_manifest: str = ""
    images_root: str = ""  # the folder the split manifest's image paths are relative to

    def split_path(self, name: str) -> str:
        return str(Path(self.path) / name)

    def files(self) -> list[str]:
        return [str(Path(self.path) / "datasets.json"), self.split_manifest,
                *(self.split_path(name) for name in ("train", "validation", "test"))]


@dataclass(frozen=True)
class TrainedModel(Output):
    """A trained model folder (`model.keras` + `bundle.json`) and how its training went."""

    best_epoch: int = 0
    epochs_run: int = 0
    train_seconds: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)
    worker: str = ""  # where it was trained (tasks.workers.current_worker)
    kept_because: str = ""  # which epoch early stopping kept, and why (ocr_core.training.stopping)
    mlflow_run: str = ""  # the training's MLflow run (a link), when it was tracked there

    @property
    def tensorboard(self) -> str:
        """The training's TensorBoard events folder, beside the bundle."""
        from ocr_core.training.tensorboard_folder import tensorboard_folder

        return str(tensorboard_folder(self.path))

    def files(self) -> list[str]:
        return [str(Path(self.path) / name) for name in
                ("model.keras", "bundle.json", "params.json", "history.json", "metrics.json")]

    @classmethod
    def from_folder(cls, folder: Path, step_key: str) -> Self | None:
        """The record of the complete bundle a training step saved in `folder`; None when there
        is none (nothing there, or a folder older than the training summary in its metrics)."""
        try:
            info = read_json(folder / "bundle.json")
            metrics = read_json(folder / "metrics.json")
        except FileNotFoundError:
            return None
        if "training" not in metrics or not (folder / "model.keras").is_file():
            return None
        training = metrics["training"]
        return cls(str(folder), step_key=step_key, best_epoch=training["best_epoch"],
                   epochs_run=training["epochs_run"], train_seconds=training["seconds"],
                   validation=metrics["validation"], worker=training.get("worker", ""),
                   kept_because=metrics.get("kept_epoch", {}).get("because", ""),
                   mlflow_run=training.get("mlflow_run", ""), **cls.kind_fields(info))

    @staticmethod
    def kind_fields(info: dict[str, Any]) -> dict[str, Any]:
        """This kind's fields of the record, from the bundle's `bundle.json`."""
        return {}


@dataclass(frozen=True)
class ModelBundle(TrainedModel):
    """A trained captcha model bundle (see `ocr_core.bundle.folder`)."""

    recipe: str = ""

    @staticmethod
    def kind_fields(info: dict[str, Any]) -> dict[str, Any]:
        return {"recipe": info["recipe"]}


@dataclass(frozen=True)
class EvaluationReport(Output):
    """Metrics JSON of a model on a split, and the per-image predictions beside it."""

    predictions: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[str]:
        return [self.path, self.predictions]


@dataclass(frozen=True)
class Picture(Output):
    """A PNG plot."""

    title: str = ""


@dataclass(frozen=True)
class RegisteredModel(Output):
    """A version in the model registry; `content_digest` is the bundle's content hash."""

    version: str = ""


@dataclass(frozen=True)
class PromotionDecision(Output):
    """A champion/challenger decision, as recorded in the registry's decision log (`path`)."""

    promoted: bool = False
    reason: str = ""
    challenger: str | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    margin: float = 0.0
    significance: float | None = None
    comparison: dict[str, Any] | None = None  # the paired test: count, discordant counts, p
    challenger_scores: dict[str, Any] | None = None
    champion_scores: dict[str, Any] | None = None
    evaluation_set: dict[str, Any] | None = None
    evaluation_set_uses: int | None = None  # decisions that compared models on this set
    registry: str = ""
    serving: dict[str, Any] | None = None  # the promoted SavedModel (ocr_core.registry.serving)


@dataclass(frozen=True)
class DownloadedFile(Output):
    """A downloaded file; `content_digest` is its sha256, `attempts` what it took (0: already there)."""

    url: str = ""
    size: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class MnistSource(Output):
    """Where MNIST will be read from (a local copy, or the download cache of tfds/keras);
    `content_digest` identifies the content the source delivers."""

    source: str = ""
    mnist_path: str | None = None  # local copy, or tfds's folder of official .gz files

    def files(self) -> list[str]:
        return [self.mnist_path] if self.mnist_path else []


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

    model: str = ""
    confusion_plot: str = ""
    misclassified_plot: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[str]:
        return [self.path, self.confusion_plot, self.misclassified_plot]
