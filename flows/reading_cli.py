"""Commands that read captchas with a model, one per job: `predict` prints, `predict-batch` writes
a results file through the captcha-predict flow, `review` queues unsure reads, `evaluate` scores."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flows.cli_support import chosen_runner
from flows.environment import import_tensorflow_quietly, prepare_environment
from flows.models_cli import registry_at, results_dir_option
from flows.options import params_command
from ocr_core.config import RunnerParams
from ocr_core.errors import DataError, ModelError, RegistryError
from ocr_core.statistics import correct_count, format_accuracy, wilson_interval
from ocr_core.storage import is_url, local_copy

model_option = click.option(
    "--model", "model", help="Model bundle folder (or its model.keras), a path or a store URL "
    "(s3://...). Default: the registry's champion.")
inputs_argument = click.argument("inputs", nargs=-1, required=True)


def decoder_options(command):
    """`--decoder` and `--beam-width`, shared by every command that decodes."""
    command = click.option("--beam-width", type=click.IntRange(1, 512), default=16,
                           show_default=True, help="Beams kept by beam_search.")(command)
    return click.option("--decoder", type=click.Choice(["greedy", "beam_search"]),
                        default="greedy", show_default=True, help="CTC decoding.")(command)


def _moved(new_command: str):
    """A hidden flag that `predict` no longer takes: it names the command that does the job now."""

    def refuse(ctx: click.Context, param: click.Parameter, value: object) -> None:
        if value is not None:
            raise click.UsageError(f"{param.opts[0]} moved to `ocr-pipeline {new_command}` "
                                   f"(see `ocr-pipeline {new_command} --help`)", ctx)

    return refuse


def _load_model(model: str | None, results_dir: str | None = None):
    """The given bundle (a path or URL), or the registry's champion when none is given."""
    from ocr_core.bundle.folder import load_bundle

    if model is None:
        registry = registry_at(results_dir)
        champion = registry.champion()
        if champion is None:
            raise RegistryError(f"no --model given and no champion in {registry.location} yet "
                                "(train one: ocr-pipeline retrain)")
        folder = registry.verified(champion).path
        click.echo(f"using the champion {champion.name} ({champion.location})", err=True)
        return load_bundle(folder, kind="captcha")
    return load_bundle(local_copy(model, missing=ModelError), kind="captcha")


def _read(model: str | None, results_dir: str | None, decoder: str, beam_width: int,
          inputs: tuple[str, ...], check_overlap: bool = False) -> tuple[list, list[Path] | None]:
    """Read the images of `inputs` (files or folders, paths or store URLs) in this process.

    Returns:
        the predictions, and with `check_overlap` the images the model was trained or validated
        on (None: the bundle does not record its training images, or no check was asked for).
    """
    import_tensorflow_quietly()
    from ocr_core.bundle.folder import seen_in_training
    from ocr_core.captcha.inference import expand_inputs, predict_files

    paths = expand_inputs(local_copy(item) for item in inputs)
    bundle = _load_model(model, results_dir)
    seen = seen_in_training(bundle, paths) if check_overlap else None
    if check_overlap and seen is None:
        click.echo(f"note: {bundle.path} does not record its training images (an older "
                   "bundle): whether they overlap these images cannot be checked", err=True)
    elif seen:
        click.echo(f"warning: {len(seen)} of {len(paths)} images are images {bundle.path} was "
                   f"trained or validated on (same bytes, e.g. {seen[0]}): the accuracy below "
                   "overstates how it reads captchas it has not seen", err=True)
    return predict_files(bundle, paths, strategy=decoder, beam_width=beam_width), seen


@click.command()
@model_option
@results_dir_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: '<path>\\t<text>' lines; json: one object per image "
              "with a confidence.")
@decoder_options
@click.option("--output", hidden=True, expose_value=False, callback=_moved("predict-batch"))
@click.option("--review-below", hidden=True, expose_value=False, callback=_moved("review"))
@inputs_argument
def predict(model: str | None, results_dir: str | None, output_format: str, decoder: str,
            beam_width: int, inputs: tuple[str, ...]) -> None:
    """Read captcha images (files or folders of PNGs) and print one line per image."""
    for prediction in _read(model, results_dir, decoder, beam_width, inputs)[0]:
        if output_format == "json":
            click.echo(json.dumps(prediction.as_dict()))
        else:
            click.echo(f"{prediction.path}\t{prediction.text}")


@click.command(name="predict-batch")
@model_option
@results_dir_option
@decoder_options
@click.option("--output", required=True,
              help="The results file, a path or a store URL (s3://bucket/out/p.csv): .csv "
              "(path,text,confidence) or .jsonl (one object per image). It appears, whole, when "
              "every shard is read.")
@click.option("--shard-size", type=click.IntRange(1, 1_000_000), default=5000, show_default=True,
              help="Images per shard (one task run each).")
@inputs_argument
@params_command(RunnerParams)
def predict_batch(params: RunnerParams, model: str | None, results_dir: str | None, decoder: str,
                  beam_width: int, output: str, shard_size: int, inputs: tuple[str, ...]) -> None:
    """Read folders of captchas of any size into one results file (the captcha-predict flow).

    INPUTS are PNG files and folders of PNGs, paths or store URLs (s3://bucket/incoming). The
    images are read in shards, on threads or on Dask workers (--dask-workers N starts a local
    cluster; --dask-address uses an existing one).
    """
    from flows.options import build_params
    from ocr_core.config import PredictParams

    values = params.model_dump() | {
        "inputs": list(inputs), "output": output, "model": model, "decoder": decoder,
        "beam_width": beam_width, "shard_size": shard_size}
    if results_dir is not None:
        values["results_dir"] = results_dir
    predict_params = build_params(PredictParams, values)
    for path in predict_params.inputs:  # before Prefect starts: a typo fails in a second
        if not is_url(path) and not Path(path).exists():  # a URL: the flow's first step lists it
            raise DataError(f"no such file or folder: {path}")
    prepare_environment()
    runner = chosen_runner(params, predict_params.results_dir, "results_dir")
    from flows.predict import captcha_predict
    from flows.runners import api_for_local_workers

    with api_for_local_workers(params):
        summary = captcha_predict.with_options(task_runner=runner)(predict_params)
    click.echo(f"wrote {summary.images} predictions ({summary.shards} shards, model "
               f"{summary.model}) to {summary.output} in {summary.seconds:.1f} s", err=True)
    for worker, work in summary.workers.items():
        click.echo(f"  {worker}: {work['shards']:.0f} shards, {work['images']:.0f} images, "
                   f"{work['seconds']:.1f} s reading", err=True)


@click.command()
@model_option
@results_dir_option
@decoder_options
@click.option("--below", "review_below", type=click.FloatRange(0, 1), required=True,
              help="Queue each image read with a confidence below this (0-1).")
@click.option("--review-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The review folder (created if missing); review.jsonl there logs each image.")
@inputs_argument
def review(model: str | None, results_dir: str | None, decoder: str, beam_width: int,
           review_below: float, review_dir: Path, inputs: tuple[str, ...]) -> None:
    """Copy the images a model reads with low confidence into a folder for people to label.

    Each goes in as <prediction>.png; a person renames the misreads to their true labels and
    `ocr-pipeline ingest REVIEW_DIR --data-dir D` takes them into the dataset.
    """
    predictions = _read(model, results_dir, decoder, beam_width, inputs)[0]
    from ocr_core.captcha.review import queue_for_review  # TensorFlow is loaded (quietly) by now

    queued = queue_for_review(predictions, review_below, review_dir)
    click.echo(f"queued {len(queued)} of {len(predictions)} images (confidence below "
               f"{review_below}) for review in {review_dir}")


@click.command()
@model_option
@results_dir_option
@decoder_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.argument("data_dir")
def evaluate(model: str | None, results_dir: str | None, decoder: str, beam_width: int,
             as_json: bool, data_dir: str) -> None:
    """Score a model on a folder of <label>.png captchas (a path or a store URL): accuracy, CER
    and the misreads.

    Warns (on stderr) when some of the images are ones the model was trained or validated on,
    by content; a bundle that does not record its training images says the check is not possible.
    """
    predictions, seen = _read(model, results_dir, decoder, beam_width, (data_dir,),
                              check_overlap=True)
    from ocr_core.captcha.inference import score  # TensorFlow is loaded (quietly) by now

    report = score(predictions)
    if as_json:
        low, high = wilson_interval(correct_count(report.sequence_accuracy, report.count),
                                    report.count)
        click.echo(json.dumps(report.as_dict() | {
            "sequence_accuracy_interval_95": [low, high],
            "seen_in_training": None if seen is None else [str(p) for p in seen]}, indent=2))
        return
    click.echo(f"images:               {report.count}")
    click.echo(f"sequence accuracy:    {format_accuracy(report.sequence_accuracy, report.count)}")
    click.echo(f"character error rate: {report.character_error_rate:.4f}")
    for miss in report.misreads:
        click.echo(f"misread: {miss['path']}\ttruth {miss['truth']}\tread {miss['prediction']}")
