"""The captcha OCR flow: data -> validate + index -> split -> tf.data -> train -> test -> pictures."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from flows.generation import generate_captchas
from flows.refresh import honour_refresh
from ocr_core.config import CaptchaParams
from tasks.caching import prepare_step_keys
from tasks.captcha import build_datasets, fingerprint_folder, split_dataset
from tasks.download import download_archive, extract_archive
from tasks.records import EvaluationReport, ImageFolder, Manifest, ModelBundle, Picture
from tasks.report import plot_history, plot_predictions, plot_samples, publish_report
from tasks.roots import located
from tasks.served import confine_served_run
from tasks.training import check_learned, evaluate_model, train_model
from tasks.validation import validate_images


class CaptchaRunSummary(BaseModel):
    """What a captcha run produced."""

    model_path: str
    metrics: dict[str, float | int | str]
    plots: dict[str, str]
    results_dir: str


def acquire_images(params: CaptchaParams) -> ImageFolder:
    """The images of the chosen source, as a folder record."""
    if params.source == "synthetic":
        return generate_captchas(params.sample_count, params.seed, params.results_dir)
    if params.source == "dir":
        return fingerprint_folder(params.data_dir)
    archive = download_archive(params.url, params.sha256, params.results_dir,
                               params.download_timeout, params.download_attempts,
                               params.download_backoff,
                               max_bytes=params.download_max_mib * 2**20)
    return extract_archive(archive, params.results_dir)


def checked_manifest(images: ImageFolder, params: CaptchaParams) -> Manifest:
    """Validate a folder of captchas and index the images that pass."""
    return validate_images(images, params.results_dir, params.validation_policy,
                           params.label_pattern, params.image_width_height)


def train_and_test(
    params: CaptchaParams, manifest: Manifest
) -> tuple[ModelBundle, EvaluationReport, list[Picture]]:
    """Split, preprocess, train, test, plot and publish the report artifacts."""
    root = params.results_dir
    split = split_dataset(manifest, params.seed, params.validation_fraction,
                          params.test_fraction, root)
    datasets = build_datasets(split, params.recipe, root)
    samples = plot_samples(datasets, root)
    model = train_model(datasets, params.recipe, params.epochs, params.patience,
                        params.batch_size, params.learning_rate, params.use_augmentation,
                        params.seed, root, mlflow=params.mlflow)
    model = check_learned(model, params.min_val_accuracy, root)
    evaluation = evaluate_model(model, datasets, "test", params.decoder, params.beam_width, root)
    pictures = [samples, plot_history(model, root), plot_predictions(evaluation, datasets, root)]
    publish_report(model, evaluation, pictures, root)
    return model, evaluation, pictures


@flow(name="captcha-ocr")
@honour_refresh
def captcha_ocr(params: CaptchaParams | None = None) -> CaptchaRunSummary:
    """Train and evaluate a captcha reader; every step is cached by content."""
    params = params or CaptchaParams()
    confine_served_run(params)
    prepare_step_keys()
    manifest = checked_manifest(acquire_images(params), params)
    model, evaluation, (samples, history, predictions) = train_and_test(params, manifest)
    root = params.results_dir
    return CaptchaRunSummary(
        model_path=located(root, model.path),
        metrics=evaluation.metrics,
        plots={name: located(root, picture.path) for name, picture in
               (("samples", samples), ("history", history), ("predictions", predictions))},
        results_dir=root,
    )
