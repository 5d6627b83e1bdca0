"""Serve the flows as Prefect deployments: runs start from the UI's form, the API or a schedule.

`ocr-pipeline serve` (or `python -m deployments.serve`) keeps one process running that executes
the flow runs of four deployments: `captcha-ocr/captcha`, `captcha-retrain/retrain` (on a cron
schedule, weekly by default), `captcha-sweep/sweep` and `mnist/mnist`. The flags given to
`serve` become the deployments' default parameters; the UI shows every field, typed and described.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from flows.environment import prepare_environment
from flows.options import params_command
from ocr_core.config import RESULTS_ENV, CaptchaParams, RetrainParams, SweepParams

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEFAULT_RETRAIN_CRON = "0 3 * * 1"  # Mondays 03:00
TAGS = ["ocr-pipeline"]


def default_parameters(params: RetrainParams, model: type[CaptchaParams]) -> dict[str, Any]:
    """The fields of `model` that were set explicitly, plus the absolute results root.

    Only explicit values become deployment defaults; everything else keeps the model's default.
    The results root is always given: a flow run starts in another process and folder.
    """
    given = params.model_dump(mode="json", exclude_unset=True)
    values = {name: value for name, value in given.items() if name in model.model_fields}
    return {"params": values | {"results_dir": str(params.results_dir)}}


def build_deployments(
    params: RetrainParams, cron: str | None = DEFAULT_RETRAIN_CRON, timezone: str = "UTC"
) -> list[RunnerDeployment]:
    """Deployments of the captcha, retrain, sweep and mnist flows with `params` as defaults.

    Args:
        params: defaults for the runs; its results_dir is where every run writes.
        cron: the retrain schedule, or None for a deployment without one.
        timezone: IANA time zone of `cron`.
    """
    from prefect.schedules import Cron

    from flows.captcha_ocr import captcha_ocr
    from flows.mnist import mnist
    from flows.retrain import captcha_retrain
    from flows.sweep import captcha_sweep

    retrain_defaults = default_parameters(params, RetrainParams)
    if params.source == "synthetic":
        # Same seed, same data: a scheduled run would only find last week's model in the cache.
        retrain_defaults["params"].setdefault("reseed_each_run", True)
    sweep_defaults = default_parameters(params, SweepParams)
    sweep_defaults["params"].pop("reseed_each_run", None)  # a sweep keeps its data seed
    deployments = [
        captcha_ocr.to_deployment(
            "captcha", parameters=default_parameters(params, CaptchaParams), tags=TAGS,
            description="Train and evaluate a captcha reader; every step is cached by content."),
        captcha_retrain.to_deployment(
            "retrain", parameters=retrain_defaults, tags=TAGS,
            schedules=[Cron(cron, timezone=timezone)] if cron else None,
            description="Train a challenger and promote it if it beats the champion on the "
            "registry's evaluation set."),
        captcha_sweep.to_deployment(
            "sweep", parameters=sweep_defaults, tags=TAGS,
            description="Train seeds x learning rates x recipes on the same data, each as its own "
            "task run (threads, a local Dask cluster or dask_address); the best challenges the "
            "champion."),
        mnist.to_deployment(
            "mnist", parameters={"params": {"results_dir": str(params.results_dir)}}, tags=TAGS,
            description="Train and compare the seed's MNIST digit models."),
    ]
    return deployments


def check_schedule(cron: str, timezone: str) -> None:
    """Raise a usage error for an invalid cron string or time zone, before anything starts."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as error:
        raise click.UsageError("; ".join(e["msg"].removeprefix("Value error, ")
                                         for e in error.errors())) from None


@click.command()
@params_command(RetrainParams)
@click.option("--cron", default=DEFAULT_RETRAIN_CRON, show_default=True,
              help="When the retrain deployment runs (cron; the default is Mondays 03:00).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of --cron.")
@click.option("--no-schedule", is_flag=True, help="Serve the retrain deployment without a schedule.")
@click.option("--limit", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Flow runs this process executes at once; later ones wait (training is "
              "CPU-bound, so one at a time suits a small machine).")
def serve(params: RetrainParams, cron: str, timezone: str, no_schedule: bool, limit: int) -> None:
    """Serve the captcha, retrain and mnist flows until interrupted.

    Needs a Prefect server (`prefect server start`) and PREFECT_API_URL pointing at it. The
    given flags become the default parameters of the runs; on synthetic data the retrain
    deployment draws a new seed per run unless --no-reseed-each-run is given.
    """
    if not no_schedule:
        check_schedule(cron, timezone)
    # Flow runs are child processes: they inherit the results root and Prefect's storage path.
    os.environ[RESULTS_ENV] = str(params.results_dir)
    prepare_environment(params.results_dir)
    from prefect import serve as serve_deployments
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise click.UsageError(
            "no Prefect server to serve to: start one with `prefect server start` and set "
            "PREFECT_API_URL (e.g. prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api)")
    serve_deployments(*build_deployments(params, None if no_schedule else cron, timezone),
                      limit=limit)
