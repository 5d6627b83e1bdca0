"""`ocr-pipeline`: run the flows and use their models from the command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from flows.cache_cli import cache
from flows.environment import import_tensorflow_quietly, prepare_environment
from flows.models_cli import models, registry_at, results_dir_option, retrain
from flows.options import params_command
from flows.serving import serve
from ocr_core.config import CaptchaParams, IngestParams, MnistParams, RunnerParams, SweepParams
from ocr_core.errors import DataError, OcrPipelineError, RegistryError


class CliGroup(click.Group):
    """Turns the project's errors into one line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OcrPipelineError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=CliGroup)
@click.version_option(package_name="ocr-pipeline")
def main() -> None:
    """Captcha OCR and MNIST pipelines on Prefect, around a Keras core."""


@main.command()
@params_command(CaptchaParams)
def captcha(params: CaptchaParams) -> None:
    """Train and evaluate a captcha reader (the captcha-ocr flow)."""
    if params.data_dir is not None and not params.data_dir.is_dir():
        raise DataError(f"--data-dir is not a folder: {params.data_dir}")
    prepare_environment(params.results_dir)
    from flows.captcha_ocr import captcha_ocr

    summary = captcha_ocr(params)
    metrics = summary.metrics
    click.echo("")
    click.echo(f"model:                    {summary.model_path}")
    click.echo(f"test sequence accuracy:   {100 * metrics['sequence_accuracy']:.2f}% "
               f"({metrics['count']} images, {metrics['decoder']} decoding)")
    click.echo(f"test character error rate: {metrics['character_error_rate']:.4f}")
    for name, path in summary.plots.items():
        click.echo(f"plot ({name}): {path}")


@main.command(name="mnist")
@params_command(MnistParams)
def mnist_command(params: MnistParams) -> None:
    """Train and compare the seed's MNIST digit models (the mnist flow)."""
    from ocr_core.mnist.sources import check_available, download_cache

    # Before Prefect and TensorFlow load: offline, this fails in seconds, not minutes.
    check_available(params.source, params.mnist_path, download_cache(params.results_dir),
                    host=params.download_host, port=params.download_port,
                    timeout=params.connect_timeout)
    prepare_environment(params.results_dir)
    runner = _chosen_runner(params, params.results_dir, "results_dir")
    from flows.mnist import mnist
    from flows.runners import api_for_local_workers

    with api_for_local_workers(params):
        summary = mnist.with_options(task_runner=runner)(params)
    click.echo("")
    columns = list(summary.rows[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in summary.rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in summary.rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    for name, path in summary.models.items():
        click.echo(f"model ({name}): {path}")
    for name, path in summary.plots.items():
        click.echo(f"plot ({name}): {path}")


def _chosen_runner(params: RunnerParams, folder: Path, given_as: str, trains: bool = True):
    """The task runner `params` asks for; says where tasks run and what to know before a Dask run.

    Args:
        folder: the (absolute) folder the run writes to.
        given_as: the name of the option or argument that names it.
        trains: the run trains models (local Dask workers then load TensorFlow at start).
    """
    import logging

    from flows.runners import describe_runner, start_up_warnings, task_runner_for

    given = click.get_current_context().params.get(given_as)
    click.echo(describe_runner(params), err=True)
    for warning in start_up_warnings(params, folder, given, check_env=given_as == "results_dir"):
        click.echo(f"Warning: {warning}", err=True)
    runner = task_runner_for(params, load_tensorflow=trains)
    # Importing distributed (above) set its loggers' levels; its scheduler and nannies log
    # every connection at INFO.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    return runner


def _echo_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    text = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(cells[i]) for cells in text)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for cells in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)))


@main.command()
@params_command(SweepParams, exclude=("reseed_each_run",))
def sweep(params: SweepParams) -> None:
    """Train seeds x learning rates x recipes on the same data; the best challenges the champion.

    Each configuration is its own task run: on threads by default, or spread over Dask
    workers (--dask-workers N starts a local cluster; --dask-address uses an existing one).
    """
    if params.data_dir is not None and not params.data_dir.is_dir():
        raise DataError(f"--data-dir is not a folder: {params.data_dir}")
    prepare_environment(params.results_dir)
    runner = _chosen_runner(params, params.results_dir, "results_dir")
    from flows.runners import api_for_local_workers
    from flows.sweep import captcha_sweep

    with api_for_local_workers(params):
        summary = captcha_sweep.with_options(task_runner=runner)(params)
    click.echo("")
    _echo_table([{k: v for k, v in row.items() if k not in ("model", "error")}
                 for row in summary.rows])
    for row in summary.rows:
        if row["error"]:
            click.echo(f"failed: {row['configuration']}: {row['error']}")
    click.echo(f"best: {summary.best} (registered as {summary.challenger})")
    verb = "promoted to champion" if summary.promoted else "not promoted"
    click.echo(f"{summary.challenger} {verb}: {summary.reason}")
    click.echo(f"champion: {summary.champion or 'none'}; decision log: {summary.decision_path}")


def _decoder_options(command):
    command = click.option("--beam-width", type=click.IntRange(1, 512), default=16,
                           show_default=True, help="Beams kept by beam_search.")(command)
    return click.option("--decoder", type=click.Choice(["greedy", "beam_search"]),
                         default="greedy", show_default=True, help="CTC decoding.")(command)


def _load_model(model: Path | None, results_dir: Path | None = None):
    """The given bundle, or the registry's champion when none is given."""
    from ocr_core.bundle import load_bundle

    if model is None:
        registry = registry_at(results_dir)
        champion = registry.champion()
        if champion is None:
            raise RegistryError(f"no --model given and no champion in {registry.path} yet "
                                "(train one: ocr-pipeline retrain)")
        click.echo(f"using the champion {champion.name} ({champion.path})", err=True)
        model = champion.path
    return load_bundle(model)


@main.command()
@click.option("--model", "model", type=click.Path(path_type=Path),
              help="Model bundle folder (or its model.keras). Default: the registry's champion.")
@results_dir_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: '<path>\\t<text>' lines; json: one object per image "
              "with a confidence.")
@_decoder_options
@click.option("--review-below", type=click.FloatRange(0, 1), default=None,
              help="Copy each image read with a confidence below this (0-1) into --review-dir, "
              "named <prediction>.png, for a person to correct; then `ingest` it.")
@click.option("--review-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The review folder (created if missing); review.jsonl there logs each image.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the predictions to this results file (.csv or .jsonl) instead of "
              "printing them: the captcha-predict flow reads the images in shards, on threads "
              "or Dask workers, and the file appears, whole, when every shard is read.")
@click.option("--shard-size", type=click.IntRange(1, 1_000_000), default=5000, show_default=True,
              help="With --output: images per shard (one task run each).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@params_command(RunnerParams)
def predict(params: RunnerParams, model: Path | None, results_dir: Path | None, output_format: str,
            decoder: str, beam_width: int, review_below: float | None, review_dir: Path | None,
            output: Path | None, shard_size: int, inputs: tuple[Path, ...]) -> None:
    """Read captcha images (files or folders of PNGs) with a trained model.

    Without --output the predictions are printed, read in this process. With --output they go
    to one results file through the captcha-predict flow, whose shards can run on a Dask
    cluster (--dask-workers N starts a local one; --dask-address uses an existing one).
    """
    if (review_below is None) != (review_dir is None):
        raise click.UsageError("--review-below and --review-dir go together")
    if output is None and params.runner_kind != "threads":
        raise click.UsageError("--dask-workers and --dask-address read into a results file: "
                               "give --output FILE.csv or --output FILE.jsonl")
    if output is not None:
        format_source = click.get_current_context().get_parameter_source("output_format")
        if format_source is not click.core.ParameterSource.DEFAULT:
            raise click.UsageError("--format chooses what is printed; with --output the "
                                   "file's suffix (.csv or .jsonl) chooses the format")
        written = _predict_to_file(params, model, results_dir, decoder, beam_width, output,
                                   shard_size, inputs)
        if review_dir is not None:
            from ocr_core.prediction_files import read_predictions

            predictions = read_predictions(written)
    else:
        predictions = _predict_here(model, results_dir, output_format, decoder, beam_width,
                                    inputs)
    if review_dir is not None:
        from ocr_core.review import queue_for_review

        queued = queue_for_review(predictions, review_below, review_dir)
        click.echo(f"queued {len(queued)} of {len(predictions)} images (confidence below "
                   f"{review_below}) for review in {review_dir}", err=True)


def _predict_here(model: Path | None, results_dir: Path | None, output_format: str, decoder: str,
                  beam_width: int, inputs: tuple[Path, ...]) -> list:
    """Read the images in this process and print one line per image."""
    import_tensorflow_quietly()
    from ocr_core.inference import expand_inputs, predict_files

    paths = expand_inputs(inputs)
    bundle = _load_model(model, results_dir)
    predictions = predict_files(bundle, paths, strategy=decoder, beam_width=beam_width)
    for prediction in predictions:
        if output_format == "json":
            click.echo(json.dumps(prediction.as_dict()))
        else:
            click.echo(f"{prediction.path}\t{prediction.text}")
    return predictions


def _predict_to_file(params: RunnerParams, model: Path | None, results_dir: Path | None,
                     decoder: str, beam_width: int, output: Path, shard_size: int,
                     inputs: tuple[Path, ...]) -> Path:
    """Run the captcha-predict flow, which writes `output`; returns its absolute path."""
    from flows.options import build_params
    from ocr_core.config import PredictParams

    values = params.model_dump() | {
        "inputs": list(inputs), "output": output, "model": model, "decoder": decoder,
        "beam_width": beam_width, "shard_size": shard_size}
    if results_dir is not None:
        values["results_dir"] = results_dir
    predict_params = build_params(PredictParams, values)
    for path in predict_params.inputs:  # before Prefect starts: a typo fails in a second
        if not path.exists():
            raise DataError(f"no such file or folder: {path}")
    prepare_environment(predict_params.results_dir)
    runner = _chosen_runner(params, predict_params.results_dir, "results_dir")
    from flows.predict import captcha_predict
    from flows.runners import api_for_local_workers

    with api_for_local_workers(params):
        summary = captcha_predict.with_options(task_runner=runner)(predict_params)
    click.echo(f"wrote {summary.images} predictions ({summary.shards} shards, model "
               f"{summary.model}) to {summary.output} in {summary.seconds:.1f} s", err=True)
    for worker, work in summary.workers.items():
        click.echo(f"  {worker}: {work['shards']:.0f} shards, {work['images']:.0f} images, "
                   f"{work['seconds']:.1f} s reading", err=True)
    return summary.output


@main.command()
@click.option("--count", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="Captchas to generate.")
@click.option("--seed", type=click.IntRange(0), default=2024, show_default=True,
              help="Generator seed; use one never used in training for a fair evaluation.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@params_command(RunnerParams, exclude=("max_workers",))
def generate(params: RunnerParams, count: int, seed: int, out_dir: Path) -> None:
    """Write COUNT generated captchas (<label>.png, 200x50) into OUT_DIR.

    With --dask-workers or --dask-address the images are rendered in shards by Dask workers
    (the same bytes as here); OUT_DIR must then be on storage the workers see.
    """
    if params.runner_kind == "threads":
        from ocr_core.synthetic import generate_captchas

        paths = generate_captchas(out_dir, count, seed, workers=min(2, os.cpu_count() or 1))
        click.echo(f"wrote {len(paths)} captchas to {out_dir}")
        return
    from ocr_core.config import RunParams

    out_dir = out_dir.expanduser().absolute()
    prepare_environment(RunParams().results_dir)
    runner = _chosen_runner(params, out_dir, "out_dir", trains=False)
    from flows.generation import GenerateParams, generate_captcha_folder

    values = params.model_dump() | {"count": count, "seed": seed, "out_dir": out_dir}
    from flows.runners import api_for_local_workers

    with api_for_local_workers(params):
        written = generate_captcha_folder.with_options(task_runner=runner)(GenerateParams(**values))
    click.echo(f"wrote {written} captchas to {out_dir}")


@main.command()
@click.option("--model", "model", type=click.Path(path_type=Path),
              help="Model bundle folder (or its model.keras). Default: the registry's champion.")
@results_dir_option
@_decoder_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.argument("data_dir", type=click.Path(path_type=Path))
def evaluate(model: Path | None, results_dir: Path | None, decoder: str, beam_width: int,
             as_json: bool, data_dir: Path) -> None:
    """Score a model on a folder of <label>.png captchas: accuracy, CER and the misreads."""
    import_tensorflow_quietly()
    from ocr_core.inference import expand_inputs, predict_files, score

    paths = expand_inputs([data_dir])
    bundle = _load_model(model, results_dir)
    report = score(predict_files(bundle, paths, strategy=decoder, beam_width=beam_width))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    click.echo(f"images:               {report.count}")
    click.echo(f"sequence accuracy:    {100 * report.sequence_accuracy:.2f}%")
    click.echo(f"character error rate: {report.character_error_rate:.4f}")
    for miss in report.misreads:
        click.echo(f"misread: {miss['path']}\ttruth {miss['truth']}\tread {miss['prediction']}")


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
    prepare_environment(params.results_dir, tensorflow=False)
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
        click.echo("note: no PREFECT_API_URL, so the event went to a temporary local server; "
                   "point it at the server `serve` uses for the event to start a retrain", err=True)


main.add_command(retrain)
main.add_command(models)
main.add_command(serve)
main.add_command(cache)

if __name__ == "__main__":
    sys.exit(main())
