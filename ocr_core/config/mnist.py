"""Parameters of the MNIST flow: which of the original notebook's digit models, on which copy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ocr_core.config.common import (
    AbsolutePath,
    Distinct,
    RunnerParams,
    RunParams,
    TrackingParams,
)

MnistModelName = Literal["dense", "simple_cnn", "larger_cnn"]
MNIST_MODELS: tuple[MnistModelName, ...] = ("dense", "simple_cnn", "larger_cnn")


class MnistParams(TrackingParams, RunParams, RunnerParams):
    """Parameters of the MNIST flow: which of the original notebook's digit models to train, on which copy."""

    models: Annotated[list[MnistModelName], Distinct] = Field(
        default_factory=lambda: list(MNIST_MODELS),
        min_length=1,
        description="Models to train and compare: dense (Flatten-Dense128), simple_cnn "
        "(Conv32 5x5), larger_cnn (Conv30 5x5 + Conv15 3x3). Default: all three.",
    )
    source: Literal["tfds", "keras", "local"] = Field(
        "tfds",
        description="Where MNIST comes from: tensorflow_datasets (tfds), keras's mnist.npz "
        "(keras), or a local copy at mnist_path (local: four IDX files or an mnist.npz).",
    )
    mnist_path: AbsolutePath | None = Field(
        None,
        description="Local copy: required for the local source; for tfds, a folder with the "
        "four official .gz files to prepare from instead of downloading.",
    )
    epochs: int = Field(15, ge=1, le=1000, description="Maximum training epochs per model.")
    patience: int = Field(
        3, ge=1, description="Epochs without a lower validation loss before stopping."
    )
    batch_size: int = Field(128, ge=1, le=4096, description="Batch size (the original notebook's 128).")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5,
        description="Share of the training images held out for early stopping (never the test set).",
    )
    seed: int = Field(42, ge=0, description="Drives the validation split, shuffling and weight init.")
    min_val_accuracy: float = Field(
        0.5, ge=0, le=1,
        description="Learned-nothing guard: a model whose best validation accuracy (0-1) is "
        "below this fails the run; it is kept for inspection but never evaluated or compared.",
    )
    download_host: str = Field(
        "storage.googleapis.com",
        min_length=1,
        description="Host the tfds and keras sources download from; checked before loading, so "
        "an offline run fails in seconds.",
    )
    download_port: int = Field(443, ge=1, le=65535, description="Port of download_host.")
    connect_timeout: float = Field(
        5.0, gt=0, le=120, description="Seconds allowed for reaching download_host."
    )

    @model_validator(mode="after")
    def _check_source(self) -> MnistParams:
        if self.source == "local" and self.mnist_path is None:
            raise ValueError("source 'local' needs mnist_path (a folder with the four MNIST IDX "
                             "files, or an mnist.npz)")
        if self.source == "keras" and self.mnist_path is not None:
            raise ValueError("mnist_path does not apply to the keras source; use source 'local' "
                             "to read a local copy")
        return self
