"""The retrain flow: train a challenger, score it and the champion on the held-out set, promote if better.

Every step is cached by content, so a rerun with unchanged data, parameters and code finds its
model in the cache; the gate then sees the champion itself and keeps it. A scheduled retrain
therefore learns something only when its data changed: new files in the `dir` source, or a new
seed per run for synthetic data (`reseed_each_run`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel

from flows.captcha_ocr import acquire_images, checked_manifest, train_and_test
from flows.generation import generate_captchas
from flows.refresh import honour_refresh
from ocr_core.config import RetrainParams
from tasks.caching import prepare_step_keys
from tasks.captcha import fingerprint_folder, split_dataset
from tasks.decision_report import publish_decision
from tasks.records import ImageFolder, Manifest, PromotionDecision, RegisteredModel, Split
from tasks.registry import (
    challenge_champion,
    record_failed_challenger,
    register_model,
    report_split_changes,
    reserve_evaluation_set,
    warn_small_evaluation_set,
)
from tasks.roots import located
from tasks.served import confine_served_run


class RetrainSummary(BaseModel):
    """What a retrain run decided."""

    promoted: bool
    reason: str
    challenger: str
    champion: str | None
    seed: int
    test_metrics: dict[str, float | int | str]
    challenger_scores: dict[str, float | int]
    champion_scores: dict[str, float | int] | None
    comparison: dict[str, float | int | str] | None = None
    split_changes: dict[str, dict[str, int]] | None = None
    decision_path: str
    results_dir: str


def acquire_evaluation_images(params: RetrainParams) -> ImageFolder:
    """The held-out images: the given folder, or captchas generated from the reserved seed."""
    if params.evaluation_dir is not None:
        return fingerprint_folder(params.evaluation_dir)
    return generate_captchas(params.evaluation_samples, params.evaluation_seed,
                             params.results_dir)


def describe_evaluation_set(params: RetrainParams) -> dict[str, Any]:
    """Where the evaluation set comes from, for the registry and the decision artifact."""
    if params.evaluation_dir is not None:
        return {"folder": str(params.evaluation_dir)}
    return {"generated with seed": params.evaluation_seed}


def describe_training_data(params: RetrainParams, manifest: Manifest) -> dict[str, Any]:
    """What a model was trained on: source, image count, seed and the manifest's content hash."""
    data: dict[str, Any] = {"source": params.source, "images": manifest.count,
                            "seed": params.seed, "manifest_digest": manifest.content_digest}
    if params.source == "dir":
        data["data_dir"] = str(params.data_dir)
    elif params.source == "url":
        data["url"] = params.url
    return data


def seeded_for_run(params: RetrainParams, run_id: str) -> RetrainParams:
    """`params` for one flow run: with `reseed_each_run`, a seed drawn from the run's id (logged
    and recorded with the version, so `--seed` reproduces the run)."""
    if not params.reseed_each_run:
        return params
    seed = int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % 2**31
    if seed == params.evaluation_seed:
        seed += 1
    return params.model_copy(update={"seed": seed})


def reserve_and_split(params: RetrainParams) -> tuple[Manifest, Manifest, Split]:
    """The checked training images, the evaluation set kept apart from them, and their split."""
    manifest = checked_manifest(acquire_images(params), params)
    evaluation_set = reserve_evaluation_set(
        checked_manifest(acquire_evaluation_images(params), params), manifest,
        describe_evaluation_set(params), params.results_dir)
    warn_small_evaluation_set(evaluation_set, params.promotion_margin, params.significance)
    split = split_dataset(manifest, params.seed, params.validation_fraction,
                          params.test_fraction, params.results_dir)
    return manifest, evaluation_set, split


def gate(challenger: RegisteredModel, evaluation_set: Manifest,
         params: RetrainParams) -> PromotionDecision:
    """Let a registered challenger face the champion on the evaluation set; publish the decision."""
    decision = challenge_champion(challenger, evaluation_set, params.promotion_margin,
                                  params.decoder, params.beam_width, params.results_dir,
                                  significance=params.significance)
    publish_decision(decision)
    return decision


@flow(name="captcha-retrain")
@honour_refresh
def captcha_retrain(params: RetrainParams | None = None) -> RetrainSummary:
    """Train a challenger; it replaces the champion only if it reads the held-out set better."""
    params = seeded_for_run(params or RetrainParams(), str(flow_run.id))
    confine_served_run(params)
    prepare_step_keys()
    root = params.results_dir
    try:
        manifest, evaluation_set, split = reserve_and_split(params)
        changes = report_split_changes(split, root)
        model, test, _ = train_and_test(params, manifest)
        challenger = register_model(
            model, test, describe_training_data(params, manifest) | {"split_changes": changes},
            params.model_dump(mode="json"), root, split)
    except Exception as error:
        publish_decision(record_failed_challenger(f"{type(error).__name__}: {error}",
                                                  params.promotion_margin, root))
        raise
    decision = gate(challenger, evaluation_set, params)
    return RetrainSummary(
        promoted=decision.promoted, reason=decision.reason, challenger=challenger.version,
        champion=decision.champion_after, seed=params.seed, test_metrics=test.metrics,
        challenger_scores=decision.challenger_scores or {},
        champion_scores=decision.champion_scores, comparison=decision.comparison,
        split_changes=changes, decision_path=located(root, decision.path), results_dir=root,
    )
