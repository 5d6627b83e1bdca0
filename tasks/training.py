"""Prefect tasks that train, evaluate and read captchas with a model bundle."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from ocr_core.files import read_json, remove_path, write_json
from ocr_core.layout import ResultsLayout
from ocr_core.statistics import format_accuracy
from tasks.caching import cached_task, current_step_key
from tasks.logs import run_logger
from tasks.records import Datasets, EvaluationReport, ModelBundle
from tasks.roots import located
from tasks.training_step import training_step
from tasks.workers import current_worker


@cached_task(ignore=("threads", "mlflow"))
def train_model(
    datasets: Datasets,
    recipe: str,
    epochs: int | None,
    patience: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    augment: bool,
    seed: int,
    results_dir: Path,
    threads: int | None = None,
    mlflow: str | None = None,
) -> ModelBundle:
    """Train a model of `recipe`; save the best epoch's model as a bundle, atomically.

    Training length, batch size and patience not given are fitted to the training set's size
    (`ocr_core.captcha.training.plan_training`). The training's state is backed up after every epoch in
    a work folder named by the step key: a killed run called again resumes from its last
    finished epoch (see `ocr_core.training.resume`). A complete bundle already in the key's folder (a run
    killed before Prefect kept its result) is the result: it is not trained again, unless the
    run refreshes the cache. The step's lock (`ocr_core.cache.locks`) keeps both folders to one run.
    Every training writes TensorBoard events beside its bundle and, with `mlflow` or
    $MLFLOW_TRACKING_URI, an MLflow run (`tasks.tracking`).
    """
    from ocr_core.bundle.folder import captcha_fields, save_bundle
    from ocr_core.captcha.ctc import Vocabulary
    from ocr_core.captcha.models import get_recipe
    from ocr_core.captcha.pipeline import count_split, load_split
    from ocr_core.captcha.training import plan_training, train_captcha_model
    from ocr_core.threads import configure_threads
    from ocr_core.training.tensorboard import captcha_samples
    from tasks.progress import epoch_progress  # here: it loads Keras, which a cached run never needs
    from tasks.tracking import track_training

    step = training_step(results_dir, "train_model", recipe)
    if (finished := step.finished(ModelBundle)) is not None:
        return finished
    configure_threads(threads)
    spec = get_recipe(recipe)
    train_images = count_split(datasets.split_path("train"))
    plan = plan_training(train_images, spec, augment=augment, epochs=epochs, patience=patience,
                         batch_size=batch_size)
    params = {"recipe": recipe, "epochs": plan.epochs, "patience": plan.patience,
              "start_from_epoch": plan.start_from_epoch, "stopping_rule": plan.rule,
              "batch_size": plan.batch_size,
              "learning_rate": learning_rate or spec.learning_rate, "augment": augment,
              "seed": seed}
    run_logger().info("training %s (%s) on %s: %s", recipe, spec.description,
                      current_worker(), plan.describe(train_images))
    vocabulary = Vocabulary(datasets.vocabulary)
    validation = load_split(datasets.split_path("validation"), plan.batch_size)
    tracking = track_training(step, "captcha", params, captcha_samples(validation, vocabulary),
                              mlflow)
    result = train_captcha_model(
        spec, vocabulary,
        load_split(datasets.split_path("train"), plan.batch_size, shuffle=True, augment=augment,
                   seed=seed),
        validation, plan=plan, learning_rate=learning_rate, seed=seed,
        callbacks=[*epoch_progress("captcha-training", plan.epochs, "Training epochs done (%)"),
                   *tracking.callbacks],
        backup_dir=step.work,
    )
    metrics = result.metrics(plan.epochs, ("val_loss", "val_sequence_accuracy",
                                           "val_character_error_rate"))
    metrics["training"] |= {"worker": current_worker(), **tracking.fields()}
    save_bundle(step.bundle, result.model,
                captcha_fields(datasets.vocabulary, spec.height, spec.width), recipe=recipe,
                training_data_sha256=read_json(datasets.split_manifest)["digest"],
                step_key=step.key, params=params, history=result.history, metrics=metrics,
                training_images=training_digests(datasets))
    tracking.finish(step.bundle)
    remove_path(step.work)
    run_logger().info(
        "kept epoch %d of %d run (%d planned%s): %s; saved %s", result.best_epoch,
        result.epochs_run, plan.epochs, ", stopped early" if result.stopped_early else "",
        result.kept_because, step.bundle)
    return ModelBundle.from_folder(step.bundle, step.key)


def training_digests(datasets: Datasets) -> list[str]:
    """sha256 of the images a model of `datasets` learns from and is selected on (train and
    validation splits), for its bundle's overlap check."""
    from ocr_core.data.dataset import split_membership

    membership = split_membership(datasets.split_manifest)
    return membership["train"] + membership["validation"]


# NO_CACHE: a check, not a result; a rerun with another threshold must check again.
@task(cache_policy=NO_CACHE)
def check_learned(model: ModelBundle, min_val_accuracy: float, results_dir: str) -> ModelBundle:
    """Fail the run if the model learned too little to be used; otherwise pass it on.

    Not cached and kept apart from training, so a rerun with another threshold reuses the model.
    """
    from ocr_core.training.learned import require_learning

    require_learning(model.validation["val_sequence_accuracy"], min_val_accuracy,
                     located(results_dir, model.path))
    return model


@cached_task()
def evaluate_model(
    model: ModelBundle, datasets: Datasets, split: str, decoder: str, beam_width: int,
    results_dir: Path,
) -> EvaluationReport:
    """Read every image of a split; write metrics and per-image predictions as JSON.

    They go into the evaluation's own folder: the model bundle is a cached output and is never
    changed after training (the registry and the reports read test metrics from here).
    """
    from ocr_core.bundle.folder import load_bundle
    from ocr_core.captcha.inference import predict_files, score
    from ocr_core.data.dataset import read_split

    bundle = load_bundle(model.path, kind="captcha")
    records = read_split(datasets.split_manifest, datasets.images_root or None)[0][split]
    predictions = predict_files(bundle, [Path(r.path) for r in records],
                                strategy=decoder, beam_width=beam_width)
    evaluation = score(predictions)
    metrics = {"split": split, "count": evaluation.count, "decoder": decoder,
               "sequence_accuracy": evaluation.sequence_accuracy,
               "character_error_rate": evaluation.character_error_rate}
    key = current_step_key()
    folder = ResultsLayout(results_dir).evaluations / key
    write_json(folder / "predictions.json", [p.as_dict() | {"truth": Path(p.path).stem}
                                             for p in predictions])
    write_json(folder / "metrics.json", metrics | {"misreads": evaluation.misreads})
    run_logger().info("%s: sequence accuracy %s, CER %.4f", split,
                      format_accuracy(evaluation.sequence_accuracy, evaluation.count),
                      metrics["character_error_rate"])
    return EvaluationReport(str(folder / "metrics.json"), step_key=key,
                            predictions=str(folder / "predictions.json"), metrics=metrics)
