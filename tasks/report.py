"""Pictures and Prefect artifacts of a captcha run.

Plots are cached files; `publish_report` is not cached, so every flow run shows its artifacts.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from ocr_core.files import read_json
from ocr_core.layout import ResultsLayout
from ocr_core.statistics import format_accuracy
from tasks.caching import cached_task, current_step_key
from tasks.links import artifact_link, stored_location
from tasks.records import Datasets, EvaluationReport, ModelBundle, Picture, TrainedModel
from tasks.roots import on_root

SAMPLE_COUNT = 16


def _images_at(datasets: Datasets, split: str, indices: list[int]):
    """Model inputs (float in [0, 1]) and encoded labels of the split's elements at `indices`."""
    import tensorflow as tf

    wanted = set(indices)
    found = {}
    for index, (image, label) in enumerate(tf.data.Dataset.load(datasets.split_path(split))):
        if index in wanted:
            found[index] = (image.numpy() / 255.0, label.numpy())
            if len(found) == len(wanted):
                break
    return [found[i][0] for i in indices], [found[i][1] for i in indices]


def prediction_sample(predictions: list[dict], count: int = SAMPLE_COUNT) -> list[int]:
    """Indices of up to `count` predictions to show: misreads first (at most half), then the rest."""
    wrong = [i for i, p in enumerate(predictions) if p["text"] != p["truth"]][: count // 2]
    right = [i for i, p in enumerate(predictions) if p["text"] == p["truth"]]
    return sorted(wrong + right[: count - len(wrong)])


@cached_task()
def plot_samples(datasets: Datasets, results_dir: Path) -> Picture:
    """A 4x4 grid of training images (as the model sees them) with their labels."""
    from ocr_core.captcha.ctc import Vocabulary
    from ocr_core.captcha.plots import plot_samples as plot

    vocabulary = Vocabulary(datasets.vocabulary)
    images, labels = _images_at(datasets, "train", list(range(SAMPLE_COUNT)))
    key = current_step_key()
    path = plot(images, [vocabulary.decode(row) for row in labels],
                ResultsLayout(results_dir).plots / f"samples-{key}.png")
    return Picture(str(path), step_key=key, title="Training samples")


@cached_task()
def plot_history(model: ModelBundle, results_dir: Path) -> Picture:
    """Loss curves (train and validation) and validation accuracy per epoch."""
    from ocr_core.captcha.plots import plot_history as plot

    history = read_json(Path(model.path) / "history.json")
    key = current_step_key()
    path = plot(history, ResultsLayout(results_dir).plots / f"history-{key}.png")
    return Picture(str(path), step_key=key, title="Loss curves")


@cached_task()
def plot_predictions(evaluation: EvaluationReport, datasets: Datasets, results_dir: Path) -> Picture:
    """A 4x4 grid of test images with predicted and true labels; misreads shown first, in red."""
    from ocr_core.captcha.plots import plot_predictions as plot

    predictions = read_json(evaluation.predictions)
    indices = prediction_sample(predictions)
    images, _ = _images_at(datasets, evaluation.metrics["split"], indices)
    rows = [predictions[i] for i in indices]
    key = current_step_key()
    path = plot(images, [r["text"] for r in rows], [r["truth"] for r in rows],
                ResultsLayout(results_dir).plots / f"predictions-{key}.png")
    return Picture(str(path), step_key=key, title="Test predictions")


# NO_CACHE: artifacts belong to a run; every run publishes its own.
@task(cache_policy=NO_CACHE)
@on_root
def publish_report(
    model: ModelBundle, evaluation: EvaluationReport, pictures: list[Picture], results_dir: Path,
) -> None:
    """Metrics table, prediction sample table and links to the plots, as Prefect artifacts."""
    metrics = evaluation.metrics
    create_table_artifact(
        key="captcha-metrics",
        table=[
            {"metric": "test sequence accuracy (95% interval)",
             "value": format_accuracy(metrics["sequence_accuracy"], metrics["count"])},
            {"metric": "test character error rate",
             "value": f"{metrics['character_error_rate']:.4f}"},
            {"metric": "test images", "value": str(metrics["count"])},
            {"metric": "validation sequence accuracy",
             "value": f"{model.validation['val_sequence_accuracy']:.4f}"},
            {"metric": "kept epoch / epochs run", "value": f"{model.best_epoch} / {model.epochs_run}"},
            {"metric": "kept because", "value": model.kept_because},
            {"metric": "training seconds", "value": f"{model.train_seconds:.0f}"},
        ],
        description=f"Model {model.recipe} at {stored_location(model.path)}",
    )
    predictions = read_json(evaluation.predictions)
    rows = [predictions[i] for i in prediction_sample(predictions)]
    create_table_artifact(
        key="captcha-predictions",
        table=[{"image": Path(r["path"]).name, "truth": r["truth"], "prediction": r["text"],
                "correct": r["text"] == r["truth"], "confidence": round(r["confidence"], 3)}
               for r in rows],
        description="Test images (misreads first): truth and prediction",
    )
    for picture in pictures:
        create_link_artifact(key=f"captcha-{Path(picture.path).stem.split('-')[0]}-plot",
                             link=artifact_link(picture.path), link_text=picture.title)
    for line in tracking_links(model, "captcha"):
        create_link_artifact(**line)
    create_markdown_artifact(
        key="captcha-run",
        markdown="\n".join([
            "# Captcha OCR run",
            f"- model bundle: `{stored_location(model.path)}`",
            f"- test sequence accuracy: "
            f"**{format_accuracy(metrics['sequence_accuracy'], metrics['count'])}** "
            f"({metrics['decoder']} decoding; Wilson 95% interval)",
            f"- test character error rate: {metrics['character_error_rate']:.4f}",
            *[f"- {p.title}: `{stored_location(p.path)}`" for p in pictures],
            *tracking_lines(model),
        ]),
    )


def tracking_links(model: TrainedModel, prefix: str) -> list[dict[str, str]]:
    """Link artifacts to a training's TensorBoard events and its MLflow run (when tracked)."""
    links = [{"key": f"{prefix}-tensorboard", "link": artifact_link(model.tensorboard),
              "link_text": "TensorBoard events (tensorboard --logdir)"}]
    if model.mlflow_run:
        links.append({"key": f"{prefix}-mlflow-run", "link": model.mlflow_run,
                      "link_text": "MLflow run"})
    return links


def tracking_lines(model: TrainedModel) -> list[str]:
    """Markdown lines: how to open the training in TensorBoard, and its MLflow run."""
    lines = [f"- TensorBoard: `tensorboard --logdir {stored_location(model.tensorboard)}`"]
    if model.mlflow_run:
        lines.append(f"- MLflow run: {model.mlflow_run}")
    return lines
