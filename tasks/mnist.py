"""Prefect tasks of the MNIST flow: thin wrappers over `ocr_core.mnist` that read and write files.

Data travels as the canonical `.npz`; each training builds the original notebook's tf.data pipelines from it
inside the task and saves a model folder. Every file lands under the results root, in a place
named by its content key, written atomically.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from ocr_core.files import remove_path, sha256_json
from ocr_core.layout import ResultsLayout
from ocr_core.statistics import format_accuracy
from tasks.caching import cached_task, current_step_key
from tasks.digit_records import DigitData, DigitEvaluationReport, DigitModel, MnistSource
from tasks.download import target_policy
from tasks.links import artifact_link, stored_location
from tasks.logs import run_logger
from tasks.records import Picture
from tasks.roots import located, on_root
from tasks.training_step import training_step
from tasks.workers import current_worker

GRID_SIZE = 6  # the original notebook's 6x6 grid of digits
MISCLASSIFIED_SHOWN = 36


# NO_CACHE: it checks the source is reachable now; its digest keys the loading step.
@task(cache_policy=NO_CACHE)
@on_root
def locate_mnist(
    source: str, mnist_path: Path | None, results_dir: Path, download_host: str,
    download_port: int, connect_timeout: float,
) -> MnistSource:
    """Check that `source` can deliver MNIST (offline: a clear error in seconds) and fingerprint
    what it will deliver. Not cached: its digest is the cache key of the loading step."""
    from ocr_core.mnist import sources

    cache = sources.download_cache(results_dir)
    sources.check_available(source, mnist_path, cache, host=download_host, port=download_port,
                            timeout=connect_timeout, policy=target_policy())
    if source == "local":
        digest = sha256_json({"source": "local", "content": sources.local_copy_digest(mnist_path)})
    else:
        # tfds and keras verify their files' checksums: the content is fixed by the name.
        dataset = sources.TFDS_NAME if source == "tfds" else sources.KERAS_MNIST_SHA256
        digest = sha256_json({"source": source, "dataset": dataset})
    run_logger().info("MNIST source %s: %s", source, mnist_path or f"download into {cache}")
    return MnistSource(str(mnist_path or cache), content_digest=digest, source=source,
                       mnist_path=None if mnist_path is None else str(mnist_path))


@cached_task()
def load_mnist(source: MnistSource, results_dir: Path) -> DigitData:
    """Load MNIST from the source and save it as the canonical `.npz` the trainings read."""
    from ocr_core.mnist.data import save_arrays
    from ocr_core.mnist.sources import download_cache, fetch

    arrays = fetch(source.source, source.mnist_path, download_cache(results_dir))
    key = current_step_key()
    path = save_arrays(arrays, ResultsLayout(results_dir).data / "mnist" / key / "mnist.npz")
    run_logger().info("MNIST from %s: %s images into %s", source.source, arrays.counts, path)
    return DigitData(str(path), content_digest=arrays.digest(), source=source.source, counts=arrays.counts)


# NO_CACHE: it only logs, and each run's log should show it.
@task(cache_policy=NO_CACHE)
@on_root
def describe_digits(data: DigitData, results_dir: Path, index: int = 0) -> dict[str, list[int]]:
    """Log the arrays' shapes and one training digit as a 28x28 table of pixel values."""
    import pandas as pd

    from ocr_core.mnist.data import ARRAY_NAMES, load_arrays

    arrays = load_arrays(data.path)
    shapes = {name: list(getattr(arrays, name).shape) for name in ARRAY_NAMES}
    logger = run_logger()
    logger.info("shapes: %s", ", ".join(f"{name} {tuple(shape)}" for name, shape in shapes.items()))
    table = pd.DataFrame(arrays.x_train[index]).to_string(line_width=None)
    logger.info("training digit %d (label %d):\n%s", index, arrays.y_train[index], table)
    return shapes


@cached_task()
def plot_digits(data: DigitData, seed: int, results_dir: Path) -> Picture:
    """A random 6x6 grid of training digits titled with their labels."""
    import numpy as np

    from ocr_core.mnist.data import load_arrays
    from ocr_core.mnist.plots import plot_digit_grid

    arrays = load_arrays(data.path)
    count = min(GRID_SIZE * GRID_SIZE, len(arrays.y_train))
    chosen = np.random.default_rng(seed).choice(len(arrays.y_train), count, replace=False)
    key = current_step_key()
    path = plot_digit_grid(arrays.x_train[chosen], [str(label) for label in arrays.y_train[chosen]],
                           ResultsLayout(results_dir).plots / f"mnist-digits-{key}.png",
                           columns=GRID_SIZE, title="Random training digits")
    return Picture(str(path), step_key=key, title="Random training digits")


@cached_task(ignore=("threads", "mlflow"))
def train_digit_model(
    data: DigitData,
    model_name: str,
    epochs: int,
    patience: int,
    batch_size: int,
    validation_fraction: float,
    seed: int,
    results_dir: Path,
    threads: int | None = None,
    mlflow: str | None = None,
) -> DigitModel:
    """Train one of the original notebook's models with early stopping on a validation split of
    the training images; save the kept epoch's model folder.

    It runs the one training loop (`ocr_core.training.fit.fit`, rule `ocr_core.mnist.training.RULE`):
    its state is backed up after every epoch in a work folder named by the step key, so a killed
    run called again resumes from its last finished epoch; the step's lock (`ocr_core.cache.locks`) keeps
    the folder to one run. `threads` caps TensorFlow's CPU threads; TF fixes them when it runs
    its first op, so this takes effect in a fresh process (a Dask worker) and is a logged no-op
    where TF already runs. TensorBoard events go beside the bundle; with `mlflow` or
    $MLFLOW_TRACKING_URI the training is an MLflow run too (`tasks.tracking`).
    """
    import tensorflow as tf

    from ocr_core.bundle.folder import save_bundle
    from ocr_core.mnist.data import load_arrays, split_validation
    from ocr_core.mnist.models import build_model, bundle_fields, get_spec
    from ocr_core.mnist.pipeline import evaluation_pipeline, training_pipeline
    from ocr_core.mnist.training import RULE, digit_summary
    from ocr_core.threads import configure_threads
    from ocr_core.training.fit import fit
    from ocr_core.training.tensorboard import digit_samples
    from tasks.progress import epoch_progress
    from tasks.tracking import track_training

    step = training_step(results_dir, "train_digit_model", f"mnist-{model_name}")
    if (finished := step.finished(DigitModel)) is not None:
        return finished
    logger = run_logger()
    configure_threads(threads)
    logger.info("TensorFlow threads in this process: intra-op %d, inter-op %d (0: all CPUs)",
                tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads())
    arrays = load_arrays(data.path)
    (train_images, train_labels), (val_images, val_labels) = split_validation(
        arrays.x_train, arrays.y_train, validation_fraction, seed)
    params = {"model": model_name, "epochs": epochs, "patience": patience,
              "batch_size": batch_size, "validation_fraction": validation_fraction, "seed": seed}
    logger.info("training %s (%s) on %d images, validating on %d, for up to %d epochs",
                model_name, get_spec(model_name).description, len(train_labels), len(val_labels),
                epochs)
    tracking = track_training(step, "digits", params, digit_samples(
        val_images, val_labels, bundle_fields(model_name)["classes"]), mlflow)
    result = fit(
        build_model(model_name, seed=seed),
        training_pipeline(train_images, train_labels, batch_size=batch_size, seed=seed),
        evaluation_pipeline(val_images, val_labels, batch_size=batch_size),
        epochs=epochs, rule=RULE, patience=patience, summary=digit_summary, name=model_name,
        callbacks=epoch_progress(
            f"mnist-{model_name.replace('_', '-')}-training", epochs,
            f"{model_name}: epochs done (% of the maximum; early stopping may end sooner)")
        + tracking.callbacks,
        backup_dir=step.work,
    )
    metrics = result.metrics(epochs, ("val_loss", "val_accuracy"))
    metrics["training"] |= {"worker": current_worker(), **tracking.fields()}
    save_bundle(step.bundle, result.model, bundle_fields(model_name), recipe=model_name,
                training_data_sha256=data.content_digest, step_key=step.key, params=params,
                history=result.history, metrics=metrics)
    tracking.finish(step.bundle)
    remove_path(step.work)
    logger.info("%s: kept epoch %d of %d run, validation accuracy %.2f%%, %.0f s: %s; saved %s",
                model_name, result.best_epoch, result.epochs_run,
                100 * metrics["validation"]["val_accuracy"], result.seconds, result.kept_because,
                step.bundle)
    return DigitModel.from_folder(step.bundle, step.key)


# NO_CACHE: a check, not a result; a rerun with another threshold must check again.
@task(cache_policy=NO_CACHE)
def check_digit_model_learned(model: DigitModel, min_val_accuracy: float,
                              results_dir: str) -> DigitModel:
    """Fail the run if the model's best validation accuracy is below `min_val_accuracy`;
    otherwise pass it on (kept apart from training, so a rerun reuses the model)."""
    from ocr_core.training.learned import require_learning

    require_learning(model.validation["val_accuracy"], min_val_accuracy,
                     located(results_dir, model.path),
                     measure=f"validation accuracy of {model.name}")
    return model


@cached_task()
def evaluate_digit_model(model: DigitModel, data: DigitData, batch_size: int,
                         results_dir: Path) -> DigitEvaluationReport:
    """Score a model on the test images: loss, accuracy, error %, confusion matrix, misreads.

    Everything goes into the evaluation's own folder; the model folder is never changed.
    """
    import numpy as np

    from ocr_core.bundle.folder import load_bundle
    from ocr_core.files import atomic_path, write_json
    from ocr_core.mnist.data import load_arrays
    from ocr_core.mnist.evaluation import evaluate_digits
    from ocr_core.mnist.plots import plot_confusion_matrix, plot_misclassified

    bundle = load_bundle(model.path, kind="digits")
    arrays = load_arrays(data.path)
    evaluation = evaluate_digits(bundle.model, arrays.x_test, arrays.y_test,
                                 from_logits=bundle.from_logits, batch_size=batch_size)
    metrics = {"model": model.name, "split": "test", **evaluation.as_dict()}
    wrong = np.flatnonzero(evaluation.predictions != arrays.y_test)[:MISCLASSIFIED_SHOWN]
    key = current_step_key()
    folder = ResultsLayout(results_dir).evaluations / f"mnist-{model.name}-{key}"
    title = f"{model.name}: test accuracy {100 * evaluation.accuracy:.2f}%"
    with atomic_path(folder, is_dir=True) as tmp:
        write_json(tmp / "metrics.json", metrics)
        plot_confusion_matrix(evaluation.confusion, tmp / "confusion.png", title=title)
        plot_misclassified(arrays.x_test[wrong], evaluation.predictions[wrong],
                           arrays.y_test[wrong], tmp / "misclassified.png",
                           title=f"{model.name}: first misread test digits")
    summary = {name: metrics[name] for name in ("loss", "accuracy", "error_percent", "count")}
    run_logger().info("%s Error: %.2f%% (test accuracy %s, loss %.4f)", model.name,
                      evaluation.error_percent,
                      format_accuracy(evaluation.accuracy, evaluation.count), evaluation.loss)
    return DigitEvaluationReport(str(folder / "metrics.json"), step_key=key, model=model.name,
                                 confusion_plot=str(folder / "confusion.png"),
                                 misclassified_plot=str(folder / "misclassified.png"),
                                 metrics=summary)


def comparison_rows(models: list[DigitModel],
                    evaluations: list[DigitEvaluationReport]) -> list[dict[str, object]]:
    """One row per model: name, parameters, epochs, test accuracy, error %, training seconds."""
    return [{"model": model.name, "parameters": model.parameters,
             "epochs": f"{model.best_epoch} best / {model.epochs_run} run",
             "accuracy": round(evaluation.metrics["accuracy"], 4),
             "error %": round(evaluation.metrics["error_percent"], 2),
             "train seconds": round(model.train_seconds, 1)}
            for model, evaluation in zip(models, evaluations, strict=True)]


# NO_CACHE: artifacts belong to a run; every run publishes its own.
@task(cache_policy=NO_CACHE)
@on_root
def publish_comparison(models: list[DigitModel], evaluations: list[DigitEvaluationReport],
                       digits: Picture, results_dir: Path) -> list[dict[str, object]]:
    """The comparison table and a run summary with links to the plots, as Prefect artifacts."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    rows = comparison_rows(models, evaluations)
    create_table_artifact(key="mnist-comparison", table=rows,
                          description="MNIST models side by side (test set)")
    lines = ["# MNIST run", f"- random training digits: [{Path(digits.path).name}]"
             f"({artifact_link(digits.path)})"]
    for model, evaluation in zip(models, evaluations, strict=True):
        lines.append(
            f"- **{model.name}**: test accuracy "
            f"{format_accuracy(evaluation.metrics['accuracy'], evaluation.metrics['count'])}, "
            f"error {evaluation.metrics['error_percent']:.2f}%; model `{stored_location(model.path)}`; "
            f"[confusion matrix]({artifact_link(evaluation.confusion_plot)}), "
            f"[misread digits]({artifact_link(evaluation.misclassified_plot)}); "
            f"[TensorBoard events]({artifact_link(model.tensorboard)})"
            + (f"; [MLflow run]({model.mlflow_run})" if model.mlflow_run else ""))
    create_markdown_artifact(key="mnist-run", markdown="\n".join(lines),
                             description="MNIST models, metrics and plots")
    return rows
