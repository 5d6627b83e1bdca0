"""What tasks hand each other: where the files they wrote are, and what identifies their content.

A record carries a `content_digest` (a sha256 of its content: images' labels and bytes, a file's
bytes) where one is known, else the `step_key` of the step that wrote it; later steps' keys take
its `identity`. The step's `stamps` (`ocr_core.storage.stamps`) record what its output files were
when written: a cached record is served only while they still are (`tasks.step_policy`).

Locations (`LOCATIONS`) are keys relative to the results root (`models/crnn-<key>`) for what the
pipeline wrote, and absolute paths or URLs for what it did not (a user's folder of images). A
record never names where the root is, so a copied root or bucket prefix keeps every hit. Inside
a step, `tasks.roots` turns keys into local files and back. Records are plain dataclasses of
JSON values: Prefect stores them as JSON (`tasks.record_store`), never pickled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from ocr_core.files import read_json, sha256_json
from ocr_core.storage import is_url


def is_key(location: str) -> bool:
    """Whether a location is a key relative to the results root (not a path or URL)."""
    return bool(location) and not is_url(location) and not Path(location).is_absolute()


@dataclass(frozen=True)
class Output:
    """Base record: `path` is the file or folder a task wrote.

    `content_digest`: sha256 (hex, or its first 24 digits) of the content, where known.
    `step_key`: the key of the step that wrote it (`tasks.caching`), for a step's output.
    `stamps`: the stamp of each output key when the step wrote it (set by `tasks.caching`).
    """

    LOCATIONS: ClassVar[tuple[str, ...]] = ("path",)
    """Fields that name files or folders."""

    path: str
    content_digest: str = ""
    step_key: str = field(default="", kw_only=True)
    stamps: dict[str, str] = field(default_factory=dict, kw_only=True)

    @property
    def identity(self) -> str:
        """What later steps' keys take from this record: its content digest, else its step key
        and its files' stamps (a step that wrote other bytes under the same key differs)."""
        if self.content_digest:
            return self.content_digest
        return sha256_json([self.step_key, self.stamps])[:24] if self.stamps else self.step_key

    def outputs(self) -> list[str]:
        """The locations this record's step wrote (stamped when written, checked when served)."""
        return [self.path]

    def optional_outputs(self) -> list[str]:
        """Locations the step may have written besides `outputs` (stamped when they exist)."""
        return []

    def locations(self) -> list[str]:
        """Every location the record names (what a reader of it may open)."""
        return [value for name in self.LOCATIONS if (value := getattr(self, name))]

    def moved(self, change: Callable[[str], str]) -> Self:
        """This record with every location `change`d (empty ones stay empty)."""
        changes = {name: change(value) for name in self.LOCATIONS if (value := getattr(self, name))}
        changes = {name: value for name, value in changes.items() if value != getattr(self, name)}
        return dataclasses.replace(self, **changes) if changes else self

    def relocated(self, moves: dict[str, str]) -> Self:
        """This record with every location under an old folder of `moves` put under the new one."""
        return self.moved(lambda location: _moved(location, moves))


def _moved(path: str, moves: dict[str, str]) -> str:
    for old, new in moves.items():
        old = old.rstrip("/")
        if path == old:
            return new
        if path.startswith(old + "/"):
            return new.rstrip("/") + path[len(old):]
    return path


@dataclass(frozen=True)
class ImageFolder(Output):
    """A folder of `<label>.png` captchas."""

    count: int = 0


@dataclass(frozen=True)
class Manifest(Output):
    """An index of images (path, label, sha256) and its character vocabulary."""

    LOCATIONS = ("path", "report", "images_root")

    count: int = 0
    vocabulary: str = ""
    report: str | None = None  # validation report (JSON), when the images were validated
    images_root: str = ""  # the folder its image paths are relative to

    def outputs(self) -> list[str]:
        return [self.path] + ([self.report] if self.report else [])


@dataclass(frozen=True)
class Split(Output):
    """A train/validation/test split manifest."""

    LOCATIONS = ("path", "images_root")
    counts: dict[str, int] = field(default_factory=dict)
    vocabulary: str = ""
    images_root: str = ""  # the folder its image paths are relative to


@dataclass(frozen=True)
class Datasets(Output):
    """Preprocessed tf.data snapshots of each split, for one input size."""

    LOCATIONS = ("path", "split_manifest", "images_root")
    height: int = 0
    width: int = 0
    vocabulary: str = ""
    max_label_length: int = 0
    split_manifest: str = ""
    images_root: str = ""  # the folder the split manifest's image paths are relative to

    def split_path(self, name: str) -> str:
        return str(Path(self.path) / name)


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

    def optional_outputs(self) -> list[str]:
        return [self.tensorboard]

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

    LOCATIONS = ("path", "predictions")

    predictions: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def outputs(self) -> list[str]:
        return [self.path, self.predictions]


@dataclass(frozen=True)
class Picture(Output):
    """A PNG plot."""

    title: str = ""


@dataclass(frozen=True)
class RegisteredModel(Output):
    """A version in the model registry (`path`: its key); `content_digest` is the bundle's
    content hash."""

    version: str = ""

    def outputs(self) -> list[str]:
        return []  # the registry's, not a step's: never stamped


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

    def outputs(self) -> list[str]:
        return []  # the registry's, not a step's: never stamped


@dataclass(frozen=True)
class DownloadedFile(Output):
    """A downloaded file; `content_digest` is its sha256, `attempts` what it took (0: already there)."""

    url: str = ""
    size: int = 0
    attempts: int = 0
