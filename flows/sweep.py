"""The sweep flow: prepare the data once, train every configuration as its own task run on
whichever worker is free, compare them, register every model, and hand the best (by validation
figures; the test split only reports) to the registry's gate.

Configurations are `seeds x learning_rates x recipes` (SweepParams). The data (generation or
download, validation, split, preprocessing per recipe) is shared; every training, its
learned-nothing check and its test evaluation are separate task runs, so a Dask cluster spreads
them over its workers. Every configuration is resolved: a failed one is a row of the table with
its error, never dropped; the run fails only when none succeeded.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait
from prefect.logging import get_run_logger
from pydantic import BaseModel

from flows.refresh import honour_refresh
from flows.retrain import describe_training_data, gate, reserve_and_split
from flows.runners import (
    check_workers_see,
    run_on_chosen_runner,
    thread_pool,
    training_limit,
    training_threads,
    wait_for_a_free_slot,
)
from ocr_core.config import SweepConfiguration, SweepParams
from ocr_core.errors import TrainingError
from tasks.caching import prepare_step_keys
from tasks.captcha import build_datasets
from tasks.decision_report import publish_decision
from tasks.records import Datasets, Manifest, PromotionDecision, RegisteredModel
from tasks.registry import record_failed_challenger, register_model
from tasks.roots import located
from tasks.served import confine_served_run
from tasks.sweep import SweepResult, best_result, publish_sweep
from tasks.training import check_learned, evaluate_model, train_model


class SweepSummary(BaseModel):
    """What a sweep found and what the registry decided about its best configuration."""

    rows: list[dict[str, Any]]
    best: str
    failed: list[str]
    promoted: bool
    reason: str
    challenger: str
    champion: str | None
    decision_path: str
    results_dir: str


def submit_configuration(
    config: SweepConfiguration, datasets: Datasets, params: SweepParams, threads: int | None
) -> list[PrefectFuture]:
    """Train, check and test one configuration: [training, check, evaluation] futures."""
    training = train_model.submit(
        datasets=datasets, recipe=config.recipe, epochs=params.epochs, patience=params.patience,
        batch_size=params.batch_size, learning_rate=config.learning_rate,
        augment=params.use_augmentation, seed=config.seed, results_dir=params.results_dir,
        threads=threads, mlflow=params.mlflow)
    checked = check_learned.submit(training, params.min_val_accuracy, params.results_dir)
    evaluation = evaluate_model.submit(checked, datasets, "test", params.decoder,
                                       params.beam_width, params.results_dir)
    return [training, checked, evaluation]


def resolve_configuration(config: SweepConfiguration, futures: list[PrefectFuture]) -> SweepResult:
    """The outcome of one configuration; the first failed step's error when it failed."""
    training, _, evaluation = futures
    fields = {"configuration": config.name, "recipe": config.recipe,
              "learning_rate": config.learning_rate, "seed": config.seed}
    for future in futures:
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            model = training.result(raise_on_failure=False)
            return SweepResult(**fields, error=f"{type(outcome).__name__}: {outcome}",
                               model=None if isinstance(model, BaseException) else model)
    return SweepResult(**fields, model=training.result(), evaluation=evaluation.result(),
                       cached=training.state.name == "Cached")


def configuration_params(params: SweepParams, config: SweepConfiguration) -> dict[str, Any]:
    """The parameters of one configuration's training, as the registry records them."""
    values = params.model_dump(mode="json", exclude={"seeds", "learning_rates", "recipes"})
    return values | {"recipe": config.recipe, "learning_rate": config.learning_rate,
                     "training_seed": config.seed}


def gate_best(
    params: SweepParams, results: list[SweepResult], manifest: Manifest, evaluation_set: Manifest
) -> tuple[SweepResult, RegisteredModel, PromotionDecision]:
    """Register every configuration's model and let the best challenge the champion."""
    root = params.results_dir
    best = best_result(results)
    if best is None:
        errors = "; ".join(f"{r.configuration}: {r.error}" for r in results)
        publish_decision(record_failed_challenger(f"no configuration succeeded ({errors})",
                                                  params.promotion_margin, root))
        raise TrainingError(f"all {len(results)} configurations of the sweep failed: {errors}")
    versions = {}
    for result in results:  # every model trained is kept in the registry; the best challenges
        if result.succeeded:
            config = SweepConfiguration(result.seed, result.learning_rate, result.recipe)
            versions[result.configuration] = register_model(
                result.model, result.evaluation,
                describe_training_data(params, manifest) | {"training_seed": result.seed},
                configuration_params(params, config), root)
    challenger = versions[best.configuration]
    return best, challenger, gate(challenger, evaluation_set, params)


@flow(name="captcha-sweep", task_runner=thread_pool(2))
@honour_refresh
def captcha_sweep(params: SweepParams | None = None) -> SweepSummary:
    """Train every configuration on the same data, compare them, gate the best."""
    params = params or SweepParams()
    confine_served_run(params)
    prepare_step_keys()
    if (handover := run_on_chosen_runner(captcha_sweep, params)) is not None:
        return handover()
    root = params.results_dir
    check_workers_see(root)
    manifest, evaluation_set, split = reserve_and_split(params)
    configs = params.configurations()
    datasets = {recipe: build_datasets(split, recipe, root)
                for recipe in dict.fromkeys(c.recipe for c in configs)}
    threads = training_threads()
    get_run_logger().info("%d configurations; TensorFlow threads per training: %s", len(configs),
                          threads or "TensorFlow's default")
    limit, running, submitted = training_limit(params, len(configs)), [], []
    for config in configs:
        wait_for_a_free_slot(running, limit)  # on threads, at most max_workers trainings at once
        submitted.append(submit_configuration(config, datasets[config.recipe], params, threads))
        running.append(submitted[-1][0])
    wait([future for futures in submitted for future in futures])
    results = [resolve_configuration(c, f) for c, f in zip(configs, submitted, strict=True)]
    rows = publish_sweep(results)
    for result in results:
        if not result.succeeded:
            get_run_logger().warning("configuration %s failed: %s", result.configuration,
                                     result.error)
    best, challenger, decision = gate_best(params, results, manifest, evaluation_set)
    return SweepSummary(
        rows=rows, best=best.configuration,
        failed=[r.configuration for r in results if not r.succeeded],
        promoted=decision.promoted, reason=decision.reason, challenger=challenger.version,
        champion=decision.champion_after, decision_path=located(root, decision.path), results_dir=root)
