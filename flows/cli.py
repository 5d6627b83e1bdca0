"""`ocr-pipeline`: run the flows and use their models from the command line."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from flows.cache_cli import cache
from flows.cli_support import chosen_runner, echo_table
from flows.command_errors import CliGroup
from flows.environment import prepare_environment
from flows.export_cli import export
from flows.models_cli import models, retrain
from flows.options import params_command
from flows.reading_cli import evaluate, predict, predict_batch, review
from flows.serving import serve
from ocr_core.config import (
    DEFAULT_EVALUATION_SEED,
    CaptchaParams,
    IngestParams,
    MnistParams,
    RunnerParams,
    SweepParams,
)
from ocr_core.errors import DataError
from ocr_core.statistics import format_accuracy
from ocr_core.storage import is_url


def check_data_dir(data_dir: str | None) -> None:
    """Before Prefect starts: a local --data-dir that is not a folder fails in a second (a
    store URL is listed by the run)."""
    if data_dir is not None and not is_url(data_dir) and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir is not a folder: {data_dir}")


@click.group(cls=CliGroup)
@click.version_option(package_name="ocr-pipeline")
def main() -> None:
    """Captcha OCR and MNIST pipelines on Prefect, around a Keras core."""


@main.command()
@params_command(CaptchaParams)
def captcha(params: CaptchaParams) -> None:
    """Train and evaluate a captcha reader (the captcha-ocr flow)."""
    check_data_dir(params.data_dir)
    # The local Prefect server starts while the flow's modules load, and TensorFlow while it gets
    # ready; found running, TensorFlow loads when a step needs it (a cached run never does).
    prepare_environment(tensorflow=False, wait_for_server=False)
    from flows.captcha_ocr import captcha_ocr
    from flows.environment import load_tensorflow_while_the_server_starts
    from flows.local_server import wait_for_local_server

    load_tensorflow_while_the_server_starts()
    wait_for_local_server()
    summary = captcha_ocr(params)
    metrics = summary.metrics
    click.echo("")
    click.echo(f"model:                    {summary.model_path}")
    click.echo(f"test sequence accuracy:   "
               f"{format_accuracy(metrics['sequence_accuracy'], metrics['count'])} "
               f"({metrics['decoder']} decoding)")
    click.echo(f"test character error rate: {metrics['character_error_rate']:.4f}")
    for name, path in summary.plots.items():
        click.echo(f"plot ({name}): {path}")


@main.command(name="mnist")
@params_command(MnistParams)
def mnist_command(params: MnistParams) -> None:
    """Train and compare the original notebook's MNIST digit models (the mnist flow)."""
    from ocr_core.mnist.sources import check_available, download_cache

    # Before Prefect and TensorFlow load: offline, this fails in seconds, not minutes.
    check_available(params.source, params.mnist_path, download_cache(params.results_dir),
                    host=params.download_host, port=params.download_port,
                    timeout=params.connect_timeout)
    prepare_environment()
    runner = chosen_runner(params, params.results_dir, "results_dir")
    from flows.mnist import mnist
    from flows.runners import api_for_local_workers

    with api_for_local_workers(params):
        summary = mnist.with_options(task_runner=runner)(params)
    click.echo("")
    echo_table(summary.rows)
    for name, path in summary.models.items():
        click.echo(f"model ({name}): {path}")
    for name, path in summary.plots.items():
        click.echo(f"plot ({name}): {path}")


@main.command()
@params_command(SweepParams, exclude=("reseed_each_run",))
def sweep(params: SweepParams) -> None:
    """Train seeds x learning rates x recipes on the same data; the best challenges the champion.

    Each configuration is its own task run: on threads by default, or spread over Dask
    workers (--dask-workers N starts a local cluster; --dask-address uses an existing one).
    """
    check_data_dir(params.data_dir)
    prepare_environment()
    runner = chosen_runner(params, params.results_dir, "results_dir")
    from flows.runners import api_for_local_workers
    from flows.sweep import captcha_sweep

    with api_for_local_workers(params):
        summary = captcha_sweep.with_options(task_runner=runner)(params)
    click.echo("")
    echo_table([{k: v for k, v in row.items() if k not in ("model", "error")}
                 for row in summary.rows])
    for row in summary.rows:
        if row["error"]:
            click.echo(f"failed: {row['configuration']}: {row['error']}")
    click.echo(f"best: {summary.best} (registered as {summary.challenger})")
    verb = "promoted to champion" if summary.promoted else "not promoted"
    click.echo(f"{summary.challenger} {verb}: {summary.reason}")
    click.echo(f"champion: {summary.champion or 'none'}; decision log: {summary.decision_path}")


RESERVED_SEEDS = {DEFAULT_EVALUATION_SEED: "the registry's evaluation seed",
                  CaptchaParams.model_fields["seed"].default: "the main job's training seed"}


def fresh_seed() -> int:
    """A random generator seed, never one of `RESERVED_SEEDS`."""
    while (seed := secrets.randbelow(2**31)) in RESERVED_SEEDS:
        continue
    return seed


@main.command()
@click.option("--count", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="Captchas to generate.")
@click.option("--seed", type=click.IntRange(0), default=None,
              help="Generator seed (the same seed, the same images). Default: a new random seed "
              "each time, printed, never the registry's evaluation seed or a training default.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@params_command(RunnerParams, exclude=("max_workers",))
def generate(params: RunnerParams, count: int, seed: int | None, out_dir: Path) -> None:
    """Write COUNT generated captchas (<label>.png, 200x50) into OUT_DIR.

    With --dask-workers or --dask-address the images are rendered in shards by Dask workers
    (the same bytes as here); OUT_DIR must then be on storage the workers see.
    """
    if seed is None:
        seed = fresh_seed()
    elif seed in RESERVED_SEEDS:
        click.echo(f"warning: seed {seed} is {RESERVED_SEEDS[seed]}: these images may be ones a "
                   "model was trained or evaluated on", err=True)
    again = f"(seed {seed}; the same images again: --seed {seed})"
    if params.runner_kind == "threads":
        from ocr_core.captcha.synthetic import generate_captchas

        paths = generate_captchas(out_dir, count, seed, workers=min(2, os.cpu_count() or 1))
        click.echo(f"wrote {len(paths)} captchas to {out_dir} {again}")
        return

    out_dir = out_dir.expanduser().absolute()
    prepare_environment()
    runner = chosen_runner(params, out_dir, "out_dir", trains=False)
    from flows.generation import GenerateParams, generate_captcha_folder

    values = params.model_dump() | {"count": count, "seed": seed, "out_dir": out_dir}
    from flows.runners import api_for_local_workers

    with api_for_local_workers(params):
        written = generate_captcha_folder.with_options(task_runner=runner)(GenerateParams(**values))
    click.echo(f"wrote {written} captchas to {out_dir} {again}")


@main.command()
@click.argument("source_dir", type=click.Path(file_okay=False, path_type=Path))
@params_command(IngestParams, exclude=("source_dir",))
def ingest(params: IngestParams) -> None:
    """Move checked <label>.png captchas from SOURCE_DIR into --data-dir (the captcha-ingest flow).

    Files pass the training checks (PNG, size, mode, label, no duplicate bytes, also against the
    dataset) or stay where they are; a name already in the dataset is refused, never overwritten.
    When any file moved, one `ocr-pipeline.dataset.updated` event names the dataset folder: a
    served retrain deployment on that folder starts a retrain (see `serve`).
    """
    for flag, folder in (("SOURCE_DIR", params.source_dir), ("--data-dir", params.data_dir)):
        if not folder.is_dir():  # before Prefect starts: a typo fails in a second
            raise DataError(f"{flag} is not a folder: {folder}")
    prepare_environment(tensorflow=False)
    from prefect.settings import get_current_settings

    from flows.ingest import captcha_ingest

    server = get_current_settings().api.url  # read before the flow: local mode sets its own
    summary = captcha_ingest(params)
    click.echo("")
    click.echo(f"accepted: {len(summary.accepted)} (moved into {summary.data_dir}, now "
               f"{summary.dataset_images} images)")
    click.echo(f"refused:  {len(summary.refused)}")
    for name, reasons in summary.refused.items():
        click.echo(f"  {name}: {'; '.join(reasons)}")
    click.echo(f"report:   {summary.report}")
    click.echo(f"event:    {summary.event_id or 'none (nothing accepted)'}")
    if summary.event_id and not server:
        click.echo("note: no PREFECT_API_URL, so the event went to this machine's local server; "
                   "point it at the server `serve` uses for the event to start a retrain", err=True)


for command in (predict, predict_batch, review, evaluate, export, retrain, models, serve, cache):
    main.add_command(command)

if __name__ == "__main__":
    sys.exit(main())
