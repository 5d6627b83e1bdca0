"""The MNIST flow: locate -> load -> show digits -> train the chosen models side by side ->
check each learned (`min_val_accuracy`) -> evaluate each -> comparison table."""

from __future__ import annotations

from prefect import flow
from prefect.futures import wait
from pydantic import BaseModel

from flows.refresh import honour_refresh
from flows.runners import (
    run_on_chosen_runner,
    thread_pool,
    training_limit,
    training_threads,
    wait_for_a_free_slot,
)
from ocr_core.config import MnistParams
from tasks.caching import prepare_step_keys
from tasks.mnist import (
    check_digit_model_learned,
    describe_digits,
    evaluate_digit_model,
    load_mnist,
    locate_mnist,
    plot_digits,
    publish_comparison,
    train_digit_model,
)
from tasks.roots import located
from tasks.served import confine_served_run


class MnistRunSummary(BaseModel):
    """What an MNIST run produced: the comparison rows, model folders and plots."""

    rows: list[dict[str, str | int | float]]
    models: dict[str, str]
    plots: dict[str, str]
    results_dir: str


@flow(name="mnist", task_runner=thread_pool(2))
@honour_refresh
def mnist(params: MnistParams | None = None) -> MnistRunSummary:
    """Train and compare the original notebook's digit classifiers; every step is cached by content."""
    params = params or MnistParams()
    confine_served_run(params)
    prepare_step_keys()
    if (handover := run_on_chosen_runner(mnist, params)) is not None:
        return handover()
    root = params.results_dir
    source = locate_mnist(params.source, params.mnist_path, root, params.download_host,
                          params.download_port, params.connect_timeout)
    data = load_mnist(source, root)
    describe_digits(data, root)
    digits = plot_digits(data, params.seed, root)
    threads = training_threads()  # None on threads: one process shares TF's thread pools
    limit = training_limit(params, len(params.models))
    trainings, checks, evaluations, running = [], [], [], []
    for name in params.models:
        wait_for_a_free_slot(running, limit)
        training = train_digit_model.submit(
            data, name, params.epochs, params.patience, params.batch_size,
            params.validation_fraction, params.seed, root, threads, params.mlflow)
        running.append(training)
        trainings.append(training)
        checks.append(check_digit_model_learned.submit(training, params.min_val_accuracy, root))
        evaluations.append(evaluate_digit_model.submit(checks[-1], data, params.batch_size, root))
    wait(trainings + checks + evaluations)
    models = [future.result() for future in trainings]
    for check in checks:
        check.result()  # a model that learned nothing fails the run with its figures
    reports = [future.result() for future in evaluations]
    rows = publish_comparison(models, reports, digits, root)
    plots = {"digits": located(root, digits.path)}
    for report in reports:
        plots[f"{report.model} confusion"] = located(root, report.confusion_plot)
        plots[f"{report.model} misclassified"] = located(root, report.misclassified_plot)
    return MnistRunSummary(rows=rows, models={model.name: located(root, model.path)
                                              for model in models},
                           plots=plots, results_dir=root)
