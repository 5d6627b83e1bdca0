"""Serve the flows as Prefect deployments: runs start from the UI's form, the API or a schedule.

`ocr-pipeline serve` (or `python -m deployments.serve`) keeps one process running that executes
the flow runs of five deployments: `captcha-ocr/captcha`, `captcha-retrain/retrain` (on a cron
schedule, weekly by default), `captcha-sweep/sweep`, `mnist/mnist` and `captcha-predict/predict`.
The flags given to `serve` become the deployments' default parameters; the UI shows every field,
typed and described.

On a dataset folder (`--source dir --data-dir D`), the retrain deployment also carries an event
trigger: every `ocr-pipeline.dataset.updated` event for D (sent by `ocr-pipeline ingest ... --data-dir
D`) may start a retrain, debounced: the first event of a burst schedules one run `debounce` seconds
later, and the events that follow within that window start nothing more; that run reads the folder
after the window, so it trains on everything the burst brought.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flows.command_errors import CliCommand
from flows.environment import prepare_environment
from flows.options import build_params, model_options, params_command
from ocr_core.config import CaptchaParams, RetrainParams, SweepParams
from ocr_core.data.ingest import DATASET_UPDATED_EVENT, dataset_resource_id
from ocr_core.guards.allowed_roots import ALLOWED_ROOTS_ENV, roots_setting
from ocr_core.layout import RESULTS_ENV
from tasks.served_limits import ServedLimits, check_served_limits

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.events import DeploymentEventTrigger

DEFAULT_RETRAIN_CRON = "0 3 * * 1"  # Mondays 03:00
DEFAULT_RETRAIN_DEBOUNCE = 60  # seconds: one retrain per burst of ingests
TAGS = ["ocr-pipeline"]


def default_parameters(params: RetrainParams, model: type[CaptchaParams]) -> dict[str, Any]:
    """The fields of `model` that were set explicitly, plus the absolute results root.

    Only explicit values become deployment defaults; everything else keeps the model's default.
    The results root is always given: a flow run starts in another process and folder.
    """
    given = params.model_dump(mode="json", exclude_unset=True)
    values = {name: value for name, value in given.items() if name in model.model_fields}
    return {"params": values | {"results_dir": str(params.results_dir)}}


def new_data_trigger(params: RetrainParams, defaults: dict[str, Any],
                     debounce: float = DEFAULT_RETRAIN_DEBOUNCE) -> DeploymentEventTrigger:
    """A trigger that retrains on `params.data_dir` once per burst of ingests into it.

    A reactive event trigger with threshold 1 fires on the first matching event and then ignores
    matching events until `debounce` seconds after that first one (Prefect's window, `within`).
    Its run is scheduled `debounce` seconds after the firing (`schedule_after`), so it starts
    when the window has closed and reads every file the burst brought. An event after the
    window opens a new one. Only events whose resource is exactly this folder match; the run's
    parameters are the deployment's own defaults, `data_dir` included: nothing in an event (whose
    payload anyone allowed to post events writes) chooses what is trained.
    """
    from prefect.events import DeploymentEventTrigger

    assert params.data_dir is not None, "a data trigger needs a dataset folder"
    window = timedelta(seconds=debounce)
    return DeploymentEventTrigger(
        name=f"captcha-retrain on new data in {params.data_dir}",
        description=f"Retrain when `ocr-pipeline ingest` adds captchas to {params.data_dir}; "
        f"one run per {debounce:g} s burst, started when the burst is over.",
        expect={DATASET_UPDATED_EVENT},
        match={"prefect.resource.id": dataset_resource_id(params.data_dir)},
        posture="Reactive",
        threshold=1,
        within=window,
        schedule_after=window,
        parameters={"params": defaults["params"] | {"data_dir": str(params.data_dir)}},
    )


def build_deployments(
    params: RetrainParams, cron: str | None = DEFAULT_RETRAIN_CRON, timezone: str = "UTC",
    debounce: float = DEFAULT_RETRAIN_DEBOUNCE, runner: dict[str, Any] | None = None,
) -> list[RunnerDeployment]:
    """Deployments of the captcha, retrain, sweep, mnist and predict flows with `params` as
    defaults (predict asks for its inputs and results file).

    Args:
        params: defaults for the runs; its results_dir is where every run writes.
        cron: the retrain schedule, or None for a deployment without one.
        timezone: IANA time zone of `cron`.
        debounce: seconds that gather ingests into one retrain (dir source only: the retrain
            deployment then triggers on new data in `params.data_dir`).
        runner: runner defaults of the flows that fan out (sweep, mnist, predict), e.g. the
            served `dask_address` (`served_limits`).
    """
    from prefect.schedules import Cron

    from flows.captcha_ocr import captcha_ocr
    from flows.mnist import mnist
    from flows.predict import captcha_predict
    from flows.retrain import captcha_retrain
    from flows.sweep import captcha_sweep

    retrain_defaults = default_parameters(params, RetrainParams)
    if params.source == "synthetic":
        # Same seed, same data: a scheduled run would only find last week's model in the cache.
        retrain_defaults["params"].setdefault("reseed_each_run", True)
    on_dataset = params.source == "dir"
    runner = runner or {}
    sweep_defaults = default_parameters(params, SweepParams)
    sweep_defaults["params"].pop("reseed_each_run", None)  # a sweep keeps its data seed
    sweep_defaults["params"] |= runner
    root_only = {"results_dir": str(params.results_dir)}
    deployments = [
        captcha_ocr.to_deployment(
            "captcha", parameters=default_parameters(params, CaptchaParams), tags=TAGS,
            description="Train and evaluate a captcha reader; every step is cached by content."),
        captcha_retrain.to_deployment(
            "retrain", parameters=retrain_defaults, tags=TAGS,
            schedules=[Cron(cron, timezone=timezone)] if cron else None,
            triggers=[new_data_trigger(params, retrain_defaults, debounce)] if on_dataset else None,
            # One dataset, one retrain at a time: a triggered run waits for a running one.
            concurrency_limit=1 if on_dataset else None,
            description="Train a challenger and promote it if it beats the champion on the "
            "registry's evaluation set."),
        captcha_sweep.to_deployment(
            "sweep", parameters=sweep_defaults, tags=TAGS,
            description="Train seeds x learning rates x recipes on the same data, each as its own "
            "task run (threads, a local Dask cluster or dask_address); the best challenges the "
            "champion."),
        mnist.to_deployment(
            "mnist", parameters={"params": root_only | runner}, tags=TAGS,
            description="Train and compare the original notebook's MNIST digit models."),
        captcha_predict.to_deployment(
            "predict", parameters={"params": root_only | runner}, tags=TAGS,
            description="Read folders of captchas with the champion (or a given bundle) into "
            "one results file (.csv or .jsonl), in shards on threads, a local Dask cluster or "
            "dask_address."),
    ]
    return deployments


def served_folders(params: RetrainParams) -> list[Path]:
    """The folders a served run may use by default: the results root and the data folders given."""
    given = [params.results_dir, params.data_dir, params.evaluation_dir]
    return [folder for folder in given if folder is not None]


def served_limits(given: dict[str, Any]) -> tuple[ServedLimits, dict[str, Any]]:
    """The limits of this `serve`: its flags over `OCR_PIPELINE_SERVED_*` over the defaults; and
    the runner defaults of the fan-out deployments (the served cluster, or the local worker and
    thread counts given as flags)."""
    flags = {name: value for name, value in given.items()
             if name in ServedLimits.model_fields and value is not None}
    limits = build_params(ServedLimits, ServedLimits.from_environ().model_dump() | flags)
    runner: dict[str, Any] = {}
    if limits.dask_address is not None:
        runner["dask_address"] = limits.dask_address
    elif flags.get("dask_workers"):
        runner["dask_workers"] = flags["dask_workers"]
    if "max_workers" in flags:
        runner["max_workers"] = flags["max_workers"]
    return limits, runner


def check_schedule(cron: str, timezone: str) -> None:
    """Raise a usage error for an invalid cron string or time zone, before anything starts."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as error:
        raise click.UsageError("; ".join(e["msg"].removeprefix("Value error, ")
                                         for e in error.errors())) from None


@click.command(cls=CliCommand)
@params_command(RetrainParams)
@click.option("--cron", default=DEFAULT_RETRAIN_CRON, show_default=True,
              help="When the retrain deployment runs (cron; the default is Mondays 03:00).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of --cron.")
@click.option("--no-schedule", is_flag=True, help="Serve the retrain deployment without a schedule.")
@click.option("--limit", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Flow runs this process executes at once; later ones wait (training is "
              "CPU-bound, so one at a time suits a small machine).")
@click.option("--retrain-debounce", type=click.FloatRange(0, 86_400), default=DEFAULT_RETRAIN_DEBOUNCE,
              show_default=True, help="With --source dir: seconds that gather ingests into "
              "--data-dir into one retrain, which starts when they are over (0: one per ingest).")
@model_options(ServedLimits)
def serve(params: RetrainParams, cron: str, timezone: str, no_schedule: bool, limit: int,
          retrain_debounce: float, **limit_flags: Any) -> None:
    """Serve the captcha, retrain, sweep, mnist and predict flows until interrupted.

    Needs a Prefect server (`prefect server start`) and PREFECT_API_URL pointing at it. The
    given flags become the default parameters of the runs; on synthetic data the retrain
    deployment draws a new seed per run unless --no-reseed-each-run is given. With --source dir
    it also retrains when `ocr-pipeline ingest` adds captchas to --data-dir (an event trigger,
    debounced by --retrain-debounce), one retrain at a time.

    Served runs compute only on the Dask cluster given here (--dask-address), within the limits
    given here (--dask-workers, --max-workers, --max-samples, --max-epochs, --max-download-mib,
    --max-run-minutes; docs/security.md): a run asking for more is refused before any work.
    """
    if not no_schedule:
        check_schedule(cron, timezone)
    limits, runner = served_limits(limit_flags)
    check_served_limits(params, limits)  # the runs' defaults must fit
    # Flow runs are child processes: they inherit the results root, Prefect's storage path and
    # the allowed roots (an administrator's setting wins over the folders given here).
    os.environ[RESULTS_ENV] = str(params.results_dir)
    os.environ.setdefault(ALLOWED_ROOTS_ENV, roots_setting(served_folders(params)))
    os.environ.update(limits.as_environ())
    prepare_environment()
    from prefect import serve as serve_deployments
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise click.UsageError(
            "no Prefect server to serve to: start one with `prefect server start` and set "
            "PREFECT_API_URL (e.g. prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api)")
    serve_deployments(*build_deployments(params, None if no_schedule else cron, timezone,
                                         retrain_debounce, runner), limit=limit)
