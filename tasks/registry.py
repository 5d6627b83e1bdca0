"""Prefect tasks of the model registry: register a challenger, hold the evaluation set, promote.

These tasks read and change registry state, so none is cached: each run decides anew. Scores on
the evaluation set are remembered in the registry per model content, so a champion is scored once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ocr_core.data.dataset import SPLITS, read_manifest, split_changes, split_membership
from ocr_core.errors import ConfigError, RegistryError
from ocr_core.files import sha256_json
from ocr_core.registry import ModelVersion, Registry
from ocr_core.registry.gate import DEFAULT_SIGNIFICANCE, Decision, Scores, decide
from ocr_core.registry.serving import promote
from ocr_core.statistics import evaluation_size_warning, format_accuracy
from tasks.caching import step_key
from tasks.logs import run_logger
from tasks.records import (
    EvaluationReport,
    Manifest,
    ModelBundle,
    PromotionDecision,
    RegisteredModel,
    Split,
)
from tasks.roots import current_root, on_root

CHAMPION_CHANGES_TOLERATED = 10  # other runs promoting while this one scores, before giving up


@task(cache_policy=NO_CACHE)
@on_root
def reserve_evaluation_set(
    evaluation_set: Manifest, training: Manifest, description: dict[str, Any], results_dir: Path
) -> Manifest:
    """Check that no training image is in the evaluation set and that it is the registry's set.

    Raises:
        ConfigError: the sets share images, or the registry compares models on another set.
    """
    held_out = {record.sha256: record for record in read_manifest(evaluation_set.path)[0]}
    shared = [held_out[r.sha256] for r in read_manifest(training.path)[0] if r.sha256 in held_out]
    if shared:
        raise ConfigError(
            f"{len(shared)} of the {evaluation_set.count} evaluation images are also training "
            f"images (first: {Path(shared[0].path).name}); the evaluation set must be held out"
        )
    Registry(current_root()).reserve_evaluation_set(evaluation_set.content_digest, evaluation_set.count,
                                                    description, images={
                                                        sha: Path(r.path).name
                                                        for sha, r in held_out.items()})
    unknown = sorted(set(evaluation_set.vocabulary) - set(training.vocabulary))
    if unknown:
        run_logger().warning("the evaluation set has characters the training data lacks: %s",
                                 "".join(unknown))
    return evaluation_set


@task(cache_policy=NO_CACHE)
def warn_small_evaluation_set(evaluation_set: Manifest, margin: float,
                              significance: float) -> str | None:
    """Warn when the evaluation set is too small to ever show the margin as significant."""
    warning = evaluation_size_warning(evaluation_set.count, margin, significance)
    if warning is not None:
        run_logger().warning(warning)
    return warning


@task(cache_policy=NO_CACHE)
@on_root
def register_model(
    model: ModelBundle, test: EvaluationReport, training_data: dict[str, Any],
    params: dict[str, Any], results_dir: Path, split: Split | None = None,
) -> RegisteredModel:
    """Add a trained bundle to the registry (once per content) as the challenger, with its
    validation metrics, its test metrics (from the evaluation's folder) and which images were
    in each split."""
    version = Registry(current_root()).register(
        model.path, training_data=training_data, params=params,
        metrics={"validation": model.validation, "test": test.metrics},
        split=None if split is None else split_membership(split.path))
    run_logger().info("challenger: %s (%s)", version.name, version.location)
    return RegisteredModel(version.key, content_digest=version.digest, version=version.name)


@task(cache_policy=NO_CACHE)
@on_root
def report_split_changes(split: Split, results_dir: Path) -> dict[str, dict[str, int]] | None:
    """How many images joined each split since the last registered version was trained (and,
    were the seed or fractions changed, moved between splits): logged and published. None when
    no earlier version recorded its split."""
    registry = Registry(current_root())
    earlier = next(((v, s) for v in reversed(registry.versions())
                    if (s := registry.split_of(v)) is not None), None)
    if earlier is None:
        run_logger().info("split %s: no earlier version to compare with", split.counts)
        return None
    version, before = earlier
    changes = split_changes(before, split_membership(split.path))
    run_logger().info("since %s: %s", version.name, ", ".join(
        f"{changes[name]['joined']} joined {name}" for name in SPLITS))
    moved = sum(change["moved_in"] for change in changes.values())
    if moved:
        run_logger().warning("%d earlier images changed split (another seed or other fractions "
                             "than %s): test figures are not comparable", moved, version.name)
    rows = [f"| {name} | {c['images']} | {c['joined']} | {c['moved_in']} | {c['left']} |"
            for name, c in changes.items()]
    create_markdown_artifact(key="captcha-split-changes", description="Images new to each split",
                             markdown="\n".join([
                                 f"# Split changes since {version.name}", "",
                                 "| split | images | joined | moved in | left |",
                                 "|---|---|---|---|---|", *rows]))
    return changes


def score_version(
    registry: Registry, version: ModelVersion, evaluation_set: Manifest, decoder: str,
    beam_width: int,
) -> Scores:
    """A version's scores on the evaluation set, computed once per model, set and decoding."""
    key = step_key(score_version, model=version.digest, evaluation_set=evaluation_set.content_digest,
                   decoder=decoder, beam_width=beam_width)
    known = version.scores.get(key)
    if known is not None and "misread" in known:
        return Scores(known["sequence_accuracy"], known["character_error_rate"], known["count"],
                      frozenset(known["misread"]))
    from ocr_core.bundle.folder import load_bundle
    from ocr_core.captcha.inference import predict_files, score

    records, _ = read_manifest(evaluation_set.path, evaluation_set.images_root or None)
    predictions = predict_files(load_bundle(registry.verified(version).path),
                                [Path(r.path) for r in records], strategy=decoder,
                                beam_width=beam_width)
    evaluation = score(predictions)
    misread = frozenset(r.sha256 for r, p in zip(records, predictions, strict=True)
                        if p.text != r.label)
    scores = Scores(evaluation.sequence_accuracy, evaluation.character_error_rate,
                    evaluation.count, misread)
    registry.record_scores(version, key, scores.as_dict() | {
        "misread": sorted(misread), "evaluation_set": evaluation_set.content_digest, "decoder": decoder,
        "beam_width": beam_width})
    run_logger().info("%s on the evaluation set: sequence accuracy %s, CER %.4f", version.name,
                      format_accuracy(scores.sequence_accuracy, scores.count),
                      scores.character_error_rate)
    return scores


@task(cache_policy=NO_CACHE)
@on_root
def challenge_champion(
    challenger: RegisteredModel, evaluation_set: Manifest, margin: float, decoder: str,
    beam_width: int, results_dir: Path, significance: float = DEFAULT_SIGNIFICANCE,
) -> PromotionDecision:
    """Score challenger and champion on the evaluation set; promote the challenger if it is
    better by at least `margin` and significantly so (`ocr_core.registry.gate`).

    Scoring runs without the registry's lock (it takes minutes on a large set). The lock is
    held from checking that the champion is still the one scored to moving the pointer, so two
    runs at once cannot both replace the same champion, and a decision always compares with the
    champion it replaces: if another run moved it meanwhile, the new champion is scored and the
    check repeats.
    """
    registry = Registry(current_root())
    candidate = registry.version(challenger.version)
    candidate_scores = score_version(registry, candidate, evaluation_set, decoder, beam_width)
    for _ in range(CHAMPION_CHANGES_TOLERATED):
        champion = registry.champion()
        if champion is not None and champion.digest == candidate.digest:
            champion_scores = candidate_scores
            decision = Decision(False, f"the challenger is the champion {champion.name} (the same "
                                "bundle: unchanged data, parameters and code)")
        else:
            champion_scores = (None if champion is None else
                               score_version(registry, champion, evaluation_set, decoder,
                                             beam_width))
            decision = decide(candidate_scores, champion_scores, margin, significance)
        with registry.lock():
            now = registry.champion()
            if (now and now.name) != (champion and champion.name):
                run_logger().info("the champion changed to %s while scoring; comparing again",
                                  now and now.name)
                continue
            serving = (promote(registry, candidate, decision.reason, replacing=champion)
                       if decision.promote else None)
            after = candidate if decision.promote else champion
            record = _decision_entry(
                decision, challenger=candidate.name, before=champion, after=after, margin=margin,
                challenger_scores=candidate_scores, champion_scores=champion_scores,
                registry=registry, significance=significance) | {"serving": serving}
            path = registry.record_decision(record)
        _log_decision(record)
        return _decision_record(path, record, registry)
    raise RegistryError(f"the champion of {registry.location} changed {CHAMPION_CHANGES_TOLERATED} "
                        "times while this challenger was compared; run the retrain again")


@task(cache_policy=NO_CACHE)
@on_root
def record_failed_challenger(error: str, margin: float, results_dir: Path) -> PromotionDecision:
    """Log that this run produced no challenger; the champion stays."""
    registry = Registry(current_root())
    with registry.lock():
        champion = registry.champion()
        decision = decide(None, None, margin)
        record = _decision_entry(
            Decision(False, f"{decision.reason}: {error}"), challenger=None, before=champion,
            after=champion, margin=margin, challenger_scores=None, champion_scores=None,
            registry=registry, significance=None)
        path = registry.record_decision(record)
    _log_decision(record)
    return _decision_record(path, record, registry)


def _decision_entry(
    decision: Decision, *, challenger: str | None, before: ModelVersion | None,
    after: ModelVersion | None, margin: float, challenger_scores: Scores | None,
    champion_scores: Scores | None, registry: Registry, significance: float | None,
) -> dict[str, Any]:
    """What the decision log keeps: the outcome, both scores, the paired test (n, discordant
    counts, p), the margin, the evaluation set and how many decisions have used it."""
    evaluation_set = registry.evaluation_set()
    uses = None
    if evaluation_set is not None:
        evaluation_set = {k: v for k, v in evaluation_set.items() if k != "images"}
        uses = registry.evaluation_set_uses(evaluation_set["digest"]) + (
            challenger_scores is not None)
    return {
        "promoted": decision.promote,
        "reason": decision.reason,
        "challenger": challenger,
        "champion_before": before.name if before else None,
        "champion_after": after.name if after else None,
        "margin": margin,
        "significance": significance,
        "comparison": decision.comparison.as_dict() if decision.comparison else None,
        "challenger_scores": challenger_scores.as_dict() if challenger_scores else None,
        "champion_scores": champion_scores.as_dict() if champion_scores else None,
        "evaluation_set": evaluation_set,
        "evaluation_set_uses": uses,
        "flow_run_id": flow_run.id,
    }


def _decision_record(key: str, entry: dict[str, Any], registry: Registry) -> PromotionDecision:
    fields = {k: entry[k] for k in ("promoted", "reason", "challenger", "champion_before",
                                    "champion_after", "margin", "significance", "comparison",
                                    "challenger_scores", "champion_scores", "evaluation_set",
                                    "evaluation_set_uses")} | {"serving": entry.get("serving")}
    return PromotionDecision(key, content_digest=sha256_json(entry)[:24], registry=registry.location,
                             **fields)


def _log_decision(entry: dict[str, Any]) -> None:
    verb = "promoted" if entry["promoted"] else "kept"
    subject = entry["challenger"] if entry["promoted"] else entry["champion_before"]
    run_logger().info("%s %s: %s", verb, subject or "no champion", entry["reason"])
    serving = entry.get("serving")
    if serving and serving["exported"]:
        run_logger().info("serving %s from %s", serving["serving"], serving["path"])
    elif serving:
        run_logger().warning("the SavedModel export failed (%s): %s still serve(s)",
                             serving["error"], ", ".join(serving["serving"]) or "nothing")
