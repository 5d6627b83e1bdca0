"""Typed run parameters: one object for the CLI, the flows and the Prefect UI's run form."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RESULTS_ENV = "OCR_PIPELINE_RESULTS"
DEFAULT_RESULTS_DIR = "ocr-results"
DEFAULT_CAPTCHA_URL = (
    "https://github.com/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"
)
DEFAULT_NUM_SAMPLES = 12_000


def default_results_dir() -> Path:
    """`$OCR_PIPELINE_RESULTS`, else `./ocr-results`, as an absolute path."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS_DIR).expanduser().absolute()


class RunParams(BaseModel):
    """Settings every flow shares: where results go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    results_dir: Path = Field(
        default_factory=default_results_dir,
        description="Root folder for everything the run writes (data, models, plots, "
        "Prefect results). Default: $OCR_PIPELINE_RESULTS or ./ocr-results.",
    )

    @field_validator("results_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()


class CaptchaParams(RunParams):
    """Parameters of the captcha OCR flow."""

    source: Literal["synthetic", "url", "dir"] = Field(
        "synthetic",
        description="Where the captchas come from: generated here (synthetic), the published "
        "zip (url) or a local folder of <label>.png files (dir).",
    )
    num_samples: int | None = Field(
        None,
        ge=10,
        le=1_000_000,
        description=f"Captchas to generate; synthetic source only (default {DEFAULT_NUM_SAMPLES}).",
    )
    url: str = Field(
        DEFAULT_CAPTCHA_URL, description="Zip to download for the url source (http, https, file)."
    )
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Expected sha256 of the downloaded zip; checked when given.",
    )
    data_dir: Path | None = Field(
        None, description="Folder of <label>.png captchas; required for the dir source."
    )
    seed: int = Field(42, ge=0, description="Drives generation, the split and weight init.")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the images held out for early stopping."
    )
    test_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the images held out for the final evaluation."
    )
    recipe: Literal["crnn", "seed"] = Field(
        "crnn",
        description="Model recipe: crnn (batch-normalised CRNN on 128x32, fast on CPU) or seed "
        "(the notebook's CNN + BiLSTM on 200x50).",
    )
    epochs: int = Field(8, ge=1, le=1000, description="Maximum training epochs.")
    patience: int = Field(
        3, ge=1, description="Epochs without a better validation accuracy before stopping."
    )
    batch_size: int | None = Field(
        None, ge=1, le=4096, description="Batch size (default: the recipe's)."
    )
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Peak learning rate (default: the recipe's)."
    )
    augment: bool | None = Field(
        None,
        description="Random shifts and brightness changes while training (default: on for the "
        "url and dir sources, whose real datasets are small; off for synthetic).",
    )
    decoder: Literal["greedy", "beam_search"] = Field(
        "greedy", description="CTC decoding used for the evaluation and the prediction sample."
    )
    beam_width: int = Field(16, ge=1, le=512, description="Beam width for beam_search decoding.")

    @model_validator(mode="after")
    def _check_source(self) -> CaptchaParams:
        if self.source != "synthetic" and self.num_samples is not None:
            raise ValueError(
                f"num_samples belongs to the synthetic source; source is {self.source!r}"
            )
        if self.source == "dir" and self.data_dir is None:
            raise ValueError("source 'dir' needs data_dir (a folder of <label>.png files)")
        if self.source != "dir" and self.data_dir is not None:
            raise ValueError(f"data_dir belongs to the dir source; source is {self.source!r}")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "validation_fraction + test_fraction must leave at least 10% for training, got "
                f"{self.validation_fraction} + {self.test_fraction}"
            )
        return self

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @property
    def use_augmentation(self) -> bool:
        """`augment`, or the source's default."""
        return self.augment if self.augment is not None else self.source != "synthetic"

    @property
    def sample_count(self) -> int:
        """Captchas to generate for the synthetic source."""
        return self.num_samples if self.num_samples is not None else DEFAULT_NUM_SAMPLES


MnistModelName = Literal["dense", "simple_cnn", "larger_cnn"]
MNIST_MODELS: tuple[MnistModelName, ...] = ("dense", "simple_cnn", "larger_cnn")


class MnistParams(RunParams):
    """Parameters of the MNIST flow: which of the seed's digit models to train, on which copy."""

    models: list[MnistModelName] = Field(
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
    mnist_path: Path | None = Field(
        None,
        description="Local copy: required for the local source; for tfds, a folder with the "
        "four official .gz files to prepare from instead of downloading.",
    )
    epochs: int = Field(15, ge=1, le=1000, description="Maximum training epochs per model.")
    patience: int = Field(
        3, ge=1, description="Epochs without a lower validation loss before stopping."
    )
    batch_size: int = Field(128, ge=1, le=4096, description="Batch size (the seed's 128).")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5,
        description="Share of the training images held out for early stopping (never the test set).",
    )
    seed: int = Field(42, ge=0, description="Drives the validation split, shuffling and weight init.")
    max_workers: int = Field(
        2, ge=1, le=64,
        description="Trainings run at the same time; the CPUs are divided between them.",
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

    @field_validator("models")
    @classmethod
    def _distinct_models(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("mnist_path")
    @classmethod
    def _absolute_mnist_path(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @model_validator(mode="after")
    def _check_source(self) -> MnistParams:
        if self.source == "local" and self.mnist_path is None:
            raise ValueError("source 'local' needs mnist_path (a folder with the four MNIST IDX "
                             "files, or an mnist.npz)")
        if self.source == "keras" and self.mnist_path is not None:
            raise ValueError("mnist_path does not apply to the keras source; use source 'local' "
                             "to read a local copy")
        return self
