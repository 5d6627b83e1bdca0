"""Typed run parameters: one object for the CLI, the flows and the Prefect UI's run form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ocr_core.download import check_url
from ocr_core.errors import ConfigError
from ocr_core.layout import default_results_dir
from ocr_core.patterns import check_pattern
from ocr_core.recipe_names import check_recipe_name
from ocr_core.validation import DEFAULT_LABEL_PATTERN

RecipeName = Annotated[Literal["crnn", "keras_example"], BeforeValidator(check_recipe_name)]

DEFAULT_CAPTCHA_URL = (
    "https://github.com/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"
)
DEFAULT_NUM_SAMPLES = 20_000


def check_regular_expression(value: str) -> str:
    """`value` if RE2 compiles it (linear-time matching); a validation error naming why otherwise."""
    try:
        return check_pattern(value)
    except ConfigError as error:
        raise ValueError(str(error)) from None


class ResultsParams(BaseModel):
    """Where a flow writes: the one results root."""

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


class RunParams(ResultsParams):
    """Settings every flow with cached steps shares: where results go, and whether to use the cache."""

    refresh: bool = Field(
        False,
        description="Recompute every cached step of this run instead of reading the cache "
        "(the new results replace the cached ones).",
    )


DASK_ADDRESS_PATTERN = r"^(tcp|tls|ucx)://[^\s/:]+(:[0-9]{1,5})?$"


class RunnerParams(BaseModel):
    """Where the tasks of a fanning-out flow run: threads here, a local Dask cluster, or an
    existing Dask cluster. Neither dask_workers nor dask_address: a capped thread pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_workers: int = Field(
        2, ge=1, le=64,
        description="Trainings (or shards) run at the same time on the default thread runner.",
    )
    dask_workers: int | None = Field(
        None, ge=1, le=256,
        description="Start a local Dask cluster of this many worker processes (one thread "
        "each, memory_limit each, no dashboard) for this run, and stop it afterwards.",
    )
    dask_address: str | None = Field(
        None, pattern=DASK_ADDRESS_PATTERN,
        description="Scheduler of an existing Dask cluster (tcp://HOST:PORT); nothing is started "
        "or stopped. Its workers need this package, PREFECT_API_URL and the results root.",
    )
    dask_memory_limit: str = Field(
        "auto", pattern=r"^(auto|[0-9]+(\.[0-9]+)?\s*[KMGT]i?B)$",
        description="Memory limit of each local Dask worker (e.g. 4GiB; auto: the machine's "
        "memory divided between the workers).",
    )

    @model_validator(mode="after")
    def _one_runner(self) -> RunnerParams:
        if self.dask_workers is not None and self.dask_address is not None:
            raise ValueError("give dask_workers (a local cluster) or dask_address (an existing "
                             "cluster), not both")
        return self

    @property
    def runner_kind(self) -> Literal["threads", "local-dask", "dask"]:
        """threads, local-dask (a LocalCluster of dask_workers) or dask (dask_address)."""
        if self.dask_address is not None:
            return "dask"
        return "local-dask" if self.dask_workers is not None else "threads"


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
    download_timeout: float = Field(
        60.0, gt=0, le=3600,
        description="Seconds to wait for the server to accept the connection or send more data.",
    )
    download_attempts: int = Field(
        5, ge=1, le=50,
        description="Download attempts in all (connection errors, timeouts, HTTP 5xx/429 retry).",
    )
    download_backoff: float = Field(
        1.0, ge=0, le=600,
        description="First retry delay in seconds; doubles each attempt, with jitter.",
    )
    download_max_mib: int = Field(
        64, ge=1, le=4096,
        description="Largest download in MiB (the published zip is 9 MB): a larger body is "
        "refused and nothing is kept.",
    )
    validation_policy: Literal["fail", "skip"] = Field(
        "fail",
        description="What a bad image (unreadable, wrong size or mode, bad label, duplicate) "
        "does: fail stops the run listing the files; skip leaves them out.",
    )
    label_pattern: str = Field(
        DEFAULT_LABEL_PATTERN,
        description="Regular expression (RE2 syntax) every label must match.",
    )
    image_size: str = Field(
        "200x50", pattern=r"^[1-9][0-9]*x[1-9][0-9]*$",
        description="Expected WIDTHxHEIGHT of every image, in pixels.",
    )
    seed: int = Field(42, ge=0, description="Drives generation, the split and weight init.")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the images held out for early stopping."
    )
    test_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the images held out for the final evaluation."
    )
    recipe: RecipeName = Field(
        "crnn",
        description="Model recipe: crnn (batch-normalised CRNN on 128x32, fast on CPU) or "
        "keras_example (the keras.io captcha OCR example's CNN + BiLSTM on 200x50).",
    )
    epochs: int | None = Field(
        None, ge=1, le=1000,
        description="Maximum training epochs. Default: enough to see about 96,000 images "
        "(160,000 with augmentation), so the same command learns from any data size: 6 epochs "
        "of 16,000 generated training images (the main job), 214 of 748 augmented real ones "
        "(936 real captchas split 80/10/10).",
    )
    patience: int | None = Field(
        None, ge=1,
        description="Epochs without a better one (lower validation character error rate, ties "
        "broken by lower validation loss) before stopping; epochs in the first third are not "
        "considered. Default: a tenth of the epochs, at least 2 (2 for the main job, 22 for 748 "
        "augmented images).",
    )
    batch_size: int | None = Field(
        None, ge=1, le=4096,
        description="Batch size. Default: the recipe's (crnn 64), halved down to 16 until an "
        "epoch has at least 40 steps (16 for 748 images).",
    )
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Peak learning rate (default: the recipe's)."
    )
    augment: bool | None = Field(
        None,
        description="Random shifts and brightness changes while training (default: on for the "
        "url and dir sources, whose real datasets are small; off for synthetic).",
    )
    min_val_accuracy: float = Field(
        0.5, ge=0, le=1,
        description="Learned-nothing guard: a best validation sequence accuracy (0-1) below this "
        "fails the run; the model is kept for inspection but never reported or registered.",
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

    @field_validator("url")
    @classmethod
    def _allowed_url(cls, value: str) -> str:
        try:
            return check_url(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    @field_validator("label_pattern")
    @classmethod
    def _regular_expression(cls, value: str) -> str:
        return check_regular_expression(value)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @property
    def use_augmentation(self) -> bool:
        """`augment`, or the source's default."""
        return self.augment if self.augment is not None else self.source != "synthetic"

    @property
    def image_width_height(self) -> tuple[int, int]:
        """`image_size` as (width, height)."""
        width, height = self.image_size.split("x")
        return int(width), int(height)

    @property
    def sample_count(self) -> int:
        """Captchas to generate for the synthetic source."""
        return self.num_samples if self.num_samples is not None else DEFAULT_NUM_SAMPLES


DEFAULT_EVALUATION_SEED = 2024
DEFAULT_EVALUATION_SAMPLES = 500


class RetrainParams(CaptchaParams):
    """Parameters of the retrain flow: a captcha run, then the champion/challenger gate."""

    promotion_margin: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Sequence accuracy (0-1) by which the challenger must beat the champion on "
        "the evaluation set to replace it (and the gain must also be significant).",
    )
    significance: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Largest p-value of the one-sided exact McNemar test on per-image "
        "correctness that lets a challenger replace the champion: its gain must be more than "
        "chance on the evaluation set.",
    )
    evaluation_seed: int = Field(
        DEFAULT_EVALUATION_SEED,
        ge=0,
        description="Seed of the generated evaluation set (when no evaluation_dir is given); "
        "reserved: no training may use it.",
    )
    evaluation_samples: int = Field(
        DEFAULT_EVALUATION_SAMPLES,
        ge=10,
        le=100_000,
        description="Captchas in the generated evaluation set.",
    )
    evaluation_dir: Path | None = Field(
        None,
        description="Held-out folder of <label>.png captchas that every model is compared on; "
        "required for the url and dir sources (real data). Default: a generated set.",
    )
    reseed_each_run: bool = Field(
        False,
        description="Draw a new seed for every run, so a scheduled retrain on synthetic data "
        "trains on new captchas instead of finding the last model in the cache.",
    )

    @model_validator(mode="after")
    def _check_evaluation(self) -> RetrainParams:
        if self.source != "synthetic" and self.evaluation_dir is None:
            raise ValueError(
                f"source {self.source!r} needs evaluation_dir: a held-out folder of real "
                "captchas that no model trains on"
            )
        if self.evaluation_dir is None and self.seed == self.evaluation_seed:
            raise ValueError(
                f"seed {self.seed} is the reserved evaluation_seed; train with another seed"
            )
        return self

    @field_validator("evaluation_dir")
    @classmethod
    def _absolute_evaluation_dir(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    def for_run(self, run_id: str) -> RetrainParams:
        """These parameters for one run: with `reseed_each_run`, the seed derives from `run_id`."""
        if not self.reseed_each_run:
            return self
        seed = int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % 2**31
        if seed == self.evaluation_seed:
            seed += 1
        return self.model_copy(update={"seed": seed})


MnistModelName = Literal["dense", "simple_cnn", "larger_cnn"]
MNIST_MODELS: tuple[MnistModelName, ...] = ("dense", "simple_cnn", "larger_cnn")


class MnistParams(RunParams, RunnerParams):
    """Parameters of the MNIST flow: which of the original notebook's digit models to train, on which copy."""

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


class IngestParams(RunParams):
    """Parameters of the ingest flow: move checked `<label>.png` captchas into a dataset folder."""

    source_dir: Path = Field(
        description="Folder of new <label>.png captchas (e.g. a corrected review queue); "
        "accepted files are moved out of it, refused ones stay."
    )
    data_dir: Path = Field(
        description="The dataset folder to add them to (the retrain deployment's data_dir)."
    )
    label_pattern: str = Field(
        DEFAULT_LABEL_PATTERN,
        description="Regular expression (RE2 syntax) every label must match.",
    )
    image_size: str = Field(
        "200x50", pattern=r"^[1-9][0-9]*x[1-9][0-9]*$",
        description="Expected WIDTHxHEIGHT of every image, in pixels.",
    )

    @field_validator("source_dir", "data_dir")
    @classmethod
    def _absolute_folder(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("label_pattern")
    @classmethod
    def _regular_expression(cls, value: str) -> str:
        return check_regular_expression(value)

    @property
    def image_width_height(self) -> tuple[int, int]:
        """`image_size` as (width, height)."""
        width, height = self.image_size.split("x")
        return int(width), int(height)


@dataclass(frozen=True)
class SweepConfiguration:
    """One training of a sweep: a training seed, a peak learning rate (None: the recipe's), a recipe."""

    seed: int
    learning_rate: float | None
    recipe: str

    @property
    def name(self) -> str:
        rate = "default" if self.learning_rate is None else f"{self.learning_rate:g}"
        return f"{self.recipe} lr={rate} seed={self.seed}"


class SweepParams(RetrainParams, RunnerParams):
    """Parameters of the sweep flow: data prepared once, one training per configuration of
    `seeds` x `learning_rates` x `recipes`, the best handed to the registry's gate.

    `seed` drives the data (generation and split), shared by every configuration; `seeds` drive
    weight initialisation and shuffling. An empty list stands for the single value of `seed`,
    `learning_rate` or `recipe`.
    """

    seeds: list[int] = Field(
        default_factory=list,
        description="Training seeds (weight init, shuffling), crossed with the other lists. "
        "Default: seed.",
    )
    learning_rates: list[float] = Field(
        default_factory=list,
        description="Peak learning rates, crossed with the other lists. Default: learning_rate "
        "(or the recipe's).",
    )
    recipes: list[RecipeName] = Field(
        default_factory=list,
        description="Model recipes, crossed with the other lists. Default: recipe.",
    )

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if any(seed < 0 for seed in value):
            raise ValueError(f"seeds must be >= 0, got {value}")
        return list(dict.fromkeys(value))

    @field_validator("learning_rates")
    @classmethod
    def _learning_rates(cls, value: list[float]) -> list[float]:
        if any(not 0 < rate < 1 for rate in value):
            raise ValueError(f"learning rates must be between 0 and 1 (exclusive), got {value}")
        return list(dict.fromkeys(value))

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _check_sweep(self) -> SweepParams:
        if self.reseed_each_run:
            raise ValueError("reseed_each_run does not apply to a sweep; give the data seed")
        if len(self.configurations()) > 256:
            raise ValueError(f"{len(self.configurations())} configurations; at most 256 per sweep")
        return self

    def configurations(self) -> list[SweepConfiguration]:
        """seeds x learning_rates x recipes, in that nesting order (recipe varies slowest)."""
        return [SweepConfiguration(seed, rate, recipe)
                for recipe in self.recipes or [self.recipe]
                for rate in self.learning_rates or [self.learning_rate]
                for seed in self.seeds or [self.seed]]


PREDICTION_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
"""Results file formats of the predict flow, by the output file's suffix."""


class PredictParams(ResultsParams, RunnerParams):
    """Parameters of the predict flow: read folders of captchas in shards into one results file."""

    inputs: list[Path] = Field(
        min_length=1,
        description="PNG files and folders of PNGs to read (on Dask: paths every worker sees).",
    )
    output: Path = Field(
        description="The results file, written once all shards are read: .csv (path,text,"
        "confidence) or .jsonl (one JSON object per image). Replaced atomically if it exists.",
    )
    model: Path | None = Field(
        None,
        description="Model bundle folder (or its model.keras). Default: the registry's champion.",
    )
    decoder: Literal["greedy", "beam_search"] = Field("greedy", description="CTC decoding.")
    beam_width: int = Field(16, ge=1, le=512, description="Beams kept by beam_search.")
    shard_size: int = Field(
        5000, ge=1, le=1_000_000,
        description="Images per shard: each shard is one task run, on whichever worker is free.",
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Images per model call.")

    @field_validator("inputs")
    @classmethod
    def _absolute_inputs(cls, value: list[Path]) -> list[Path]:
        return [path.expanduser().absolute() for path in value]

    @field_validator("output")
    @classmethod
    def _results_file(cls, value: Path) -> Path:
        if value.suffix.lower() not in PREDICTION_FORMATS:
            raise ValueError(f"{value} must end in .csv or .jsonl (the results file's format)")
        return value.expanduser().absolute()

    @field_validator("model")
    @classmethod
    def _absolute_model(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @property
    def output_format(self) -> Literal["csv", "jsonl"]:
        """csv or jsonl, from the output file's suffix."""
        return PREDICTION_FORMATS[self.output.suffix.lower()]  # type: ignore[return-value]
