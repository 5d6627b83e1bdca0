"""A champion/challenger decision for people: a markdown artifact with both models' scores (with
intervals), the paired test, the outcome and why."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ocr_core.registry.gate import comparison_text
from ocr_core.statistics import format_accuracy
from tasks.records import PromotionDecision


@task(cache_policy=NO_CACHE)
def publish_decision(decision: PromotionDecision) -> None:
    """The decision as a markdown artifact: both models' scores, the outcome and why."""
    create_markdown_artifact(key="captcha-promotion", markdown=decision_markdown(decision),
                             description="Champion/challenger decision")


def decision_markdown(decision: PromotionDecision) -> str:
    """A human summary of a decision: a score table, the paired test, the outcome and its reason."""
    if decision.promoted:
        title = f"{decision.challenger} promoted to champion"
    else:
        title = f"{decision.champion_before or 'no model'} stays champion"
    rows = [("challenger", decision.challenger, decision.challenger_scores),
            ("champion", decision.champion_before, decision.champion_scores)]
    lines = [
        f"# Champion/challenger: {title}",
        "",
        "| model | version | sequence accuracy (95% interval) | character error rate |",
        "|---|---|---|---|",
        *[f"| {role} | {name or '-'} | {_accuracy_cell(scores)} | "
          f"{'-' if scores is None else format(scores['character_error_rate'], '.4f')} |"
          for role, name, scores in rows],
        "",
        f"**Decision:** {'promote ' + str(decision.challenger) if decision.promoted else 'keep'}"
        f" (champion now: {decision.champion_after or 'none'})",
        "",
        f"**Why:** {decision.reason}",
        "",
        f"- rule: promote when the gain in sequence accuracy is at least the margin "
        f"({decision.margin:g}) and a one-sided exact McNemar test on per-image correctness "
        f"gives p <= {_significance_text(decision.significance)}",
        f"- paired test: {comparison_text(decision.comparison)}",
        f"- evaluation set: {_evaluation_text(decision.evaluation_set)}; decisions that have "
        f"used it: {decision.evaluation_set_uses if decision.evaluation_set_uses is not None else '-'}",
        f"- registry: `{decision.registry}`; decision log: `{decision.path}`",
        *_serving_lines(decision.serving),
    ]
    return "\n".join(lines)


def _serving_lines(serving: dict[str, Any] | None) -> list[str]:
    """Where the promoted model serves from, or why the previous one still does."""
    if serving is None:
        return []
    if serving["exported"]:
        return [f"- serving (TF Serving layout): `{serving['path']}`"]
    return [f"- serving: **the SavedModel export failed** ({serving['error']}); still serving: "
            f"{', '.join(serving['serving']) or 'nothing'}"]


def _significance_text(significance: float | None) -> str:
    return "the significance level" if significance is None else f"{significance:g}"


def _accuracy_cell(scores: dict[str, Any] | None) -> str:
    if scores is None:
        return "-"
    return format_accuracy(scores["sequence_accuracy"], scores["count"])


def _evaluation_text(evaluation: dict[str, Any] | None) -> str:
    if evaluation is None:
        return "none recorded yet"
    details = ", ".join(f"{k} {v}" for k, v in evaluation["description"].items())
    return f"{evaluation['count']} images ({details}), manifest digest `{evaluation['digest'][:16]}`"
