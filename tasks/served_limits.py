"""What a served run may compute: the cluster, the sizes and the time `ocr-pipeline serve` allows.

`serve` takes them as flags and hands them to its flow runs in the environment
(`OCR_PIPELINE_SERVED_<FIELD>`, e.g. `OCR_PIPELINE_SERVED_MAX_SAMPLES`); a `prefect worker` reads the
same variables. A served run whose parameters ask for more (another Dask scheduler, more workers,
more samples or epochs, a larger download) is refused before any work, naming the parameter, the
limit and the `serve` flag that raises it; asking for less is always allowed. The defaults fit one
2-core, 24 GiB machine. Local runs are not limited.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ocr_core.config import DASK_ADDRESS_PATTERN
from ocr_core.errors import ConfigError

ENV_PREFIX = "OCR_PIPELINE_SERVED_"


class ServedLimits(BaseModel):
    """The ceilings of every served run of one `serve` process (or worker)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dask_address: str | None = Field(
        None, pattern=DASK_ADDRESS_PATTERN,
        description="The only existing Dask cluster served runs may use (tcp://HOST:PORT); none "
        "by default. A Dask client trusts its scheduler, so a run never picks its own.")
    dask_workers: int = Field(
        2, ge=0, le=256,
        description="Most worker processes of a local Dask cluster a served run may start (each "
        "loads TensorFlow); 0: none.")
    max_workers: int = Field(
        2, ge=1, le=64, description="Most trainings (or shards) a served run runs at once on threads.")
    max_samples: int = Field(
        50_000, ge=10, le=1_000_000,
        description="Most captchas a served run may generate (num_samples, evaluation_samples).")
    max_epochs: int = Field(
        250, ge=1, le=1000, description="Most training epochs a served run may ask for (epochs).")
    max_download_mib: int = Field(
        64, ge=1, le=4096, description="Largest download a served run may allow (download_max_mib).")
    max_run_minutes: float = Field(
        240, gt=0, le=10_080,
        description="Time budget of a served run: past it the run is cancelled (its processes "
        "stopped, nothing half-written kept).")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> ServedLimits:
        """The limits in `environ` (`OCR_PIPELINE_SERVED_<FIELD>`), the defaults for the rest.

        Raises:
            ConfigError: a variable whose value is not a valid limit, naming it.
        """
        given = {name: environ[env_name(name)] for name in cls.model_fields
                 if environ.get(env_name(name), "").strip()}
        try:
            return cls.model_validate(given)
        except ValidationError as error:
            first = error.errors()[0]
            name = str(first["loc"][0])
            raise ConfigError(f"{env_name(name)}={given.get(name)!r}: {first['msg']}") from None

    def as_environ(self) -> dict[str, str]:
        """These limits as the environment variables `from_environ` reads."""
        return {env_name(name): str(value) for name, value in self.model_dump().items()
                if value is not None}


def env_name(field: str) -> str:
    """The environment variable of a limit: `max_samples` -> OCR_PIPELINE_SERVED_MAX_SAMPLES."""
    return ENV_PREFIX + field.upper()


def serve_flag(field: str) -> str:
    """The `serve` flag of a limit: `max_samples` -> --max-samples."""
    return "--" + field.replace("_", "-")


def sized_values(params: BaseModel) -> Iterator[tuple[str, int | float, str]]:
    """(parameter, the value the run would use, the limit it counts against) for `params`."""
    source = getattr(params, "source", None)
    if getattr(params, "dask_workers", None) is not None:
        yield "dask_workers", params.dask_workers, "dask_workers"
    if getattr(params, "runner_kind", None) == "threads":
        yield "max_workers", params.max_workers, "max_workers"
    if source == "synthetic" and hasattr(params, "sample_count"):
        yield "num_samples", params.sample_count, "max_samples"
    if hasattr(params, "evaluation_samples") and getattr(params, "evaluation_dir", None) is None:
        yield "evaluation_samples", params.evaluation_samples, "max_samples"
    if getattr(params, "epochs", None) is not None:
        yield "epochs", params.epochs, "max_epochs"
    if source == "url":
        yield "download_max_mib", params.download_max_mib, "max_download_mib"


def check_served_limits(params: BaseModel, limits: ServedLimits) -> None:
    """Refuse parameters that name another Dask cluster or ask for more than `limits` allow.

    Raises:
        ConfigError: for the first parameter over its limit, naming the limit and its flag.
    """
    address = getattr(params, "dask_address", None)
    if address is not None and address != limits.dask_address:
        served = limits.dask_address or "none is served"
        raise ConfigError(
            f"dask_address={address} is not the served Dask cluster ({served}): a served run "
            "computes only on the cluster given to `ocr-pipeline serve --dask-address`")
    for parameter, value, limit in sized_values(params):
        ceiling = getattr(limits, limit)
        if value > ceiling:
            raise ConfigError(
                f"{parameter}={value} is over the served limit {limit}={ceiling}; an "
                f"administrator can raise it with `ocr-pipeline serve {serve_flag(limit)}`")
