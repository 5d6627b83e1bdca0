"""The champion/challenger gate: promote only a gain that reaches the margin and is more than chance.

The challenger replaces the champion when there is no champion, or when its sequence accuracy on
the evaluation set beats the champion's by at least `margin` and the one-sided exact McNemar test
on per-image correctness (`ocr_core.statistics`) gives p <= `significance`. Otherwise, and when
the challenger has no scores (it failed), the champion stays: a tie keeps the model that serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ocr_core.statistics import (
    PairedComparison,
    compare_paired,
    correct_count,
    format_accuracy,
    required_gain,
)

DEFAULT_SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Scores:
    """A model's reading of the evaluation set; `misread` names the images it read wrong (by
    content hash), which the paired test needs."""

    sequence_accuracy: float
    character_error_rate: float
    count: int
    misread: frozenset[str] | None = None

    def as_dict(self) -> dict[str, float | int]:
        """The figures, without the per-image list."""
        return {"sequence_accuracy": self.sequence_accuracy,
                "character_error_rate": self.character_error_rate, "count": self.count}


@dataclass(frozen=True)
class Decision:
    """Whether the challenger replaces the champion, why in one sentence, and the test behind it."""

    promote: bool
    reason: str
    comparison: PairedComparison | None = None


def decide(challenger: Scores | None, champion: Scores | None, margin: float,
           significance: float = DEFAULT_SIGNIFICANCE) -> Decision:
    """The champion/challenger rule (see the module docstring).

    Args:
        challenger: scores of the new model, or None when it could not be trained or scored.
        champion: scores of the current champion on the same set, or None when there is none.
        margin: required gain in sequence accuracy, a fraction in [0, 1].
        significance: largest one-sided McNemar p-value that promotes, in (0, 1).

    Raises:
        ValueError: a parameter out of range, scores on different sets, or scores without
            the per-image results.
    """
    if not 0 <= margin <= 1:
        raise ValueError(f"margin must be in [0, 1], got {margin}")
    if not 0 < significance < 1:
        raise ValueError(f"significance must be in (0, 1), got {significance}")
    if challenger is None:
        return Decision(False, "the challenger has no scores (it failed); the champion stays")
    if champion is None:
        return Decision(True, "first model: there is no champion yet")
    if challenger.count != champion.count:
        raise ValueError(f"scores on different sets: {challenger.count} and {champion.count} images")
    if challenger.misread is None or champion.misread is None:
        raise ValueError("the paired test needs the images each model misread")
    comparison = compare_paired(challenger.count, set(challenger.misread), set(champion.misread),
                                significance)
    count = challenger.count
    gained = (correct_count(challenger.sequence_accuracy, count)
              - correct_count(champion.sequence_accuracy, count))
    needed = required_gain(margin, count)
    evidence = (f"sequence accuracy {format_accuracy(challenger.sequence_accuracy, count)} vs "
                f"{format_accuracy(champion.sequence_accuracy, count)}; "
                f"{_images(comparison.challenger_only)} only the challenger reads right, "
                f"{comparison.champion_only} only the champion; one-sided exact McNemar "
                f"p = {comparison.p_value:.4f}")
    if gained < 0:
        return Decision(False, f"worse: {evidence}", comparison)
    if gained == 0:
        return Decision(False, f"no gain: {evidence}", comparison)
    if gained < needed:
        return Decision(False, f"gains {_images(gained)}, below the margin {margin:g} "
                        f"({_images(needed)}): {evidence}", comparison)
    if comparison.p_value > significance:
        return Decision(False, f"gains {_images(gained)}, but not significantly (p = "
                        f"{comparison.p_value:.4f} > {significance:g}): {evidence}", comparison)
    return Decision(True, f"better by {_images(gained)} (margin {margin:g}) and significant "
                    f"(p = {comparison.p_value:.4f} <= {significance:g}): {evidence}", comparison)


def comparison_text(comparison: dict[str, Any] | None) -> str:
    """The paired test of a decision in one line: n, discordant counts and p."""
    if comparison is None:
        return "none (no champion to compare with, or no challenger)"
    return (f"n = {comparison['count']}, {_images(comparison['challenger_only'])} only the "
            f"challenger reads right, {comparison['champion_only']} only the champion, "
            f"p = {comparison['p_value']:.4f}")


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"
