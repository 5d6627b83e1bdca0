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

from ocr_core.dataset import read_manifest
from ocr_core.errors import ConfigError, RegistryError
from ocr_core.files import sha256_json
from ocr_core.registry import Decision, ModelVersion, Registry, Scores, decide
from tasks.caching import step_key
from tasks.logs import run_logger
from tasks.records import (
    EvaluationReport,
    Manifest,
    ModelBundle,
    PromotionDecision,
    RegisteredModel,
)

CHAMPION_CHANGES_TOLERATED = 10  # other runs promoting while this one scores, before giving up


@task(cache_policy=NO_CACHE)
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
    Registry.of(results_dir).reserve_evaluation_set(evaluation_set.content_digest, evaluation_set.count,
                                                    description)
    unknown = sorted(set(evaluation_set.vocabulary) - set(training.vocabulary))
    if unknown:
        run_logger().warning("the evaluation set has characters the training data lacks: %s",
                                 "".join(unknown))
    return evaluation_set


@task(cache_policy=NO_CACHE)
def register_model(
    model: ModelBundle, test: EvaluationReport, training_data: dict[str, Any],
    params: dict[str, Any], results_dir: Path,
) -> RegisteredModel:
    """Add a trained bundle to the registry (once per content) as the challenger, with its
    validation metrics and its test metrics (from the evaluation's folder)."""
    version = Registry.of(results_dir).register(
        model.path, training_data=training_data, params=params,
        metrics={"validation": model.validation, "test": test.metrics})
    run_logger().info("challenger: %s (%s)", version.name, version.path)
    return RegisteredModel(str(version.path), content_digest=version.digest, version=version.name)


def score_version(
    registry: Registry, version: ModelVersion, evaluation_set: Manifest, decoder: str,
    beam_width: int,
) -> Scores:
    """A version's scores on the evaluation set, computed once per model, set and decoding."""
    key = step_key(score_version, model=version.digest, evaluation_set=evaluation_set.content_digest,
                   decoder=decoder, beam_width=beam_width)
    if (known := version.scores.get(key)) is not None:
        return Scores(known["sequence_accuracy"], known["character_error_rate"], known["count"])
    from ocr_core.bundle import load_bundle
    from ocr_core.inference import predict_files, score

    records, _ = read_manifest(evaluation_set.path, evaluation_set.images_root or None)
    evaluation = score(predict_files(load_bundle(version.path), [Path(r.path) for r in records],
                                     strategy=decoder, beam_width=beam_width))
    scores = Scores(evaluation.sequence_accuracy, evaluation.character_error_rate, evaluation.count)
    registry.record_scores(version, key, scores.as_dict() | {
        "evaluation_set": evaluation_set.content_digest, "decoder": decoder, "beam_width": beam_width})
    run_logger().info("%s on the evaluation set: sequence accuracy %.2f%%, CER %.4f",
                          version.name, 100 * scores.sequence_accuracy,
                          scores.character_error_rate)
    return scores


@task(cache_policy=NO_CACHE)
def challenge_champion(
    challenger: RegisteredModel, evaluation_set: Manifest, margin: float, decoder: str,
    beam_width: int, results_dir: Path,
) -> PromotionDecision:
    """Score challenger and champion on the evaluation set; promote the challenger if it is better.

    Scoring runs without the registry's lock (it takes minutes on a large set). The lock is
    held from checking that the champion is still the one scored to moving the pointer, so two
    runs at once cannot both replace the same champion, and a decision always compares with the
    champion it replaces: if another run moved it meanwhile, the new champion is scored and the
    check repeats.
    """
    registry = Registry.of(results_dir)
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
            decision = decide(candidate_scores, champion_scores, margin)
        with registry.lock():
            now = registry.champion()
            if (now and now.name) != (champion and champion.name):
                run_logger().info("the champion changed to %s while scoring; comparing again",
                                  now and now.name)
                continue
            if decision.promote:
                registry.set_champion(candidate, decision.reason)
            after = candidate if decision.promote else champion
            record = _decision_entry(
                decision, challenger=candidate.name, before=champion, after=after, margin=margin,
                challenger_scores=candidate_scores, champion_scores=champion_scores,
                evaluation_set=registry.evaluation_set())
            path = registry.record_decision(record)
        _log_decision(record)
        return _decision_record(path, record, registry)
    raise RegistryError(f"the champion of {registry.path} changed {CHAMPION_CHANGES_TOLERATED} "
                        "times while this challenger was compared; run the retrain again")


@task(cache_policy=NO_CACHE)
def record_failed_challenger(error: str, margin: float, results_dir: Path) -> PromotionDecision:
    """Log that this run produced no challenger; the champion stays."""
    registry = Registry.of(results_dir)
    with registry.lock():
        champion = registry.champion()
        decision = decide(None, None, margin)
        record = _decision_entry(
            Decision(False, f"{decision.reason}: {error}"), challenger=None, before=champion,
            after=champion, margin=margin, challenger_scores=None, champion_scores=None,
            evaluation_set=registry.evaluation_set())
        path = registry.record_decision(record)
    _log_decision(record)
    return _decision_record(path, record, registry)


def _decision_entry(
    decision: Decision, *, challenger: str | None, before: ModelVersion | None,
    after: ModelVersion | None, margin: float, challenger_scores: Scores | None,
    champion_scores: Scores | None, evaluation_set: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "promoted": decision.promote,
        "reason": decision.reason,
        "challenger": challenger,
        "champion_before": before.name if before else None,
        "champion_after": after.name if after else None,
        "margin": margin,
        "challenger_scores": challenger_scores.as_dict() if challenger_scores else None,
        "champion_scores": champion_scores.as_dict() if champion_scores else None,
        "evaluation_set": evaluation_set,
        "flow_run_id": flow_run.id,
    }


def _decision_record(path: Path, entry: dict[str, Any], registry: Registry) -> PromotionDecision:
    fields = {k: entry[k] for k in ("promoted", "reason", "challenger", "champion_before",
                                    "champion_after", "margin", "challenger_scores",
                                    "champion_scores", "evaluation_set")}
    return PromotionDecision(str(path), content_digest=sha256_json(entry)[:24], registry=str(registry.path),
                             **fields)


def _log_decision(entry: dict[str, Any]) -> None:
    verb = "promoted" if entry["promoted"] else "kept"
    subject = entry["challenger"] if entry["promoted"] else entry["champion_before"]
    run_logger().info("%s %s: %s", verb, subject or "no champion", entry["reason"])


@task(cache_policy=NO_CACHE)
def publish_decision(decision: PromotionDecision) -> None:
    """The decision as a markdown artifact: both models' scores, the outcome and why."""
    create_markdown_artifact(key="captcha-promotion", markdown=decision_markdown(decision),
                             description="Champion/challenger decision")


def decision_markdown(decision: PromotionDecision) -> str:
    """A human summary of a decision: a score table, the outcome and its reason."""
    if decision.promoted:
        title = f"{decision.challenger} promoted to champion"
    else:
        title = f"{decision.champion_before or 'no model'} stays champion"
    rows = [("challenger", decision.challenger, decision.challenger_scores),
            ("champion", decision.champion_before, decision.champion_scores)]
    evaluation = decision.evaluation_set
    lines = [
        f"# Champion/challenger: {title}",
        "",
        "| model | version | sequence accuracy | character error rate | images |",
        "|---|---|---|---|---|",
        *[f"| {role} | {name or '-'} | {_cell(scores, 'sequence_accuracy')} | "
          f"{_cell(scores, 'character_error_rate')} | {_cell(scores, 'count')} |"
          for role, name, scores in rows],
        "",
        f"**Decision:** {'promote ' + str(decision.challenger) if decision.promoted else 'keep'}"
        f" (champion now: {decision.champion_after or 'none'})",
        "",
        f"**Why:** {decision.reason}",
        "",
        f"- margin: {decision.margin:.4f} sequence accuracy; equal accuracy goes to the lower "
        "character error rate",
        f"- evaluation set: {_evaluation_text(evaluation)}",
        f"- registry: `{decision.registry}`; decision log: `{decision.path}`",
    ]
    return "\n".join(lines)


def _cell(scores: dict[str, Any] | None, name: str) -> str:
    if scores is None:
        return "-"
    value = scores[name]
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _evaluation_text(evaluation: dict[str, Any] | None) -> str:
    if evaluation is None:
        return "none recorded yet"
    details = ", ".join(f"{k} {v}" for k, v in evaluation["description"].items())
    return f"{evaluation['count']} images ({details}), manifest digest `{evaluation['digest'][:16]}`"
