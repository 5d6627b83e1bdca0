"""What every flow's parameters share: the results root, the cache switch, the task runner, and
the annotated types the parameter models build on (one `AbsolutePath`, one label pattern...)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ocr_core.captcha.recipe_names import check_recipe_name
from ocr_core.data.validation import DEFAULT_LABEL_PATTERN
from ocr_core.errors import ConfigError
from ocr_core.guards.allowed_roots import LOCATION
from ocr_core.guards.patterns import check_pattern
from ocr_core.layout import default_results_dir
from ocr_core.storage import root_url


def _absolute(path: Path) -> Path:
    return path.expanduser().absolute()


def check_regular_expression(value: str) -> str:
    """`value` if RE2 compiles it (linear-time matching); a validation error naming why otherwise."""
    try:
        return check_pattern(value)
    except ConfigError as error:
        raise ValueError(str(error)) from None


AbsolutePath = Annotated[Path, AfterValidator(_absolute)]
"""A path made absolute (and `~` expanded) when the parameters are validated: a process work pool
starts flow runs in another folder."""


def _location(value: Any) -> str:
    try:
        return root_url(value)
    except ConfigError as error:
        raise ValueError(str(error)) from None


Location = Annotated[str, BeforeValidator(_location), LOCATION]
"""A folder or file as a path (made absolute, like `AbsolutePath`) or a store URL
(`s3://bucket/prefix`, `gs://...`; `ocr_core.storage`)."""

Distinct = AfterValidator(lambda values: list(dict.fromkeys(values)))
"""Drops repeats from a list parameter, keeping its order: a repeated entry would train twice."""

RecipeName = Annotated[Literal["crnn", "keras_example"], BeforeValidator(check_recipe_name)]
LabelPattern = Annotated[str, AfterValidator(check_regular_expression)]


class ResultsParams(BaseModel):
    """Where a flow writes: the one results root."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    results_dir: Location = Field(
        default_factory=default_results_dir,
        description="Where everything the run writes goes (data, models, plots, Prefect "
        "results): a folder, or a store URL such as s3://bucket/prefix. Default: "
        "$OCR_PIPELINE_RESULTS or ./ocr-results.",
    )


class RunParams(ResultsParams):
    """Settings every flow with cached steps shares: where results go, and whether to use the cache."""

    refresh: bool = Field(
        False,
        description="Recompute every cached step of this run instead of reading the cache "
        "(the new results replace the cached ones).",
    )


class TrackingParams(BaseModel):
    """Where trainings are tracked besides TensorBoard (always on): an MLflow server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mlflow: str | None = Field(
        None, min_length=1, max_length=2000, pattern=r"^\S+$",
        description="MLflow tracking server each training logs to (e.g. http://127.0.0.1:5000); "
        "default $MLFLOW_TRACKING_URI. Needs the mlflow extra: pip install 'ocr-pipeline[mlflow]'.",
    )

    @field_validator("mlflow")
    @classmethod
    def _mlflow_installed(cls, value: str | None) -> str | None:
        if value is not None:
            from ocr_core.training.mlflow_setup import check_mlflow_installed

            try:
                check_mlflow_installed()
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return value


ImageSize = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*x[1-9][0-9]*$")]
"""WIDTHxHEIGHT in pixels, e.g. 200x50."""


def label_pattern_field() -> Any:
    return Field(DEFAULT_LABEL_PATTERN,
                 description="Regular expression (RE2 syntax) every label must match.")


def image_size_field() -> Any:
    return Field("200x50", description="Expected WIDTHxHEIGHT of every image, in pixels.")


class ImageChecks:
    """Mixed into the parameters that check captchas (they have an `image_size` field)."""

    @property
    def image_width_height(self) -> tuple[int, int]:
        """`image_size` as (width, height)."""
        width, height = self.image_size.split("x")  # type: ignore[attr-defined]
        return int(width), int(height)


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
