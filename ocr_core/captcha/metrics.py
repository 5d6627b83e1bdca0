"""Text metrics of predictions against truth."""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning `a` into `b`."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (char_a != char_b),
            ))
        previous = current
    return previous[-1]


def _check_pairs(predictions: Sequence[str], truths: Sequence[str]) -> None:
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
    if not truths:
        raise ValueError("no samples to score")


def sequence_accuracy(predictions: Sequence[str], truths: Sequence[str]) -> float:
    """Share of predictions equal to their truth as a whole string."""
    _check_pairs(predictions, truths)
    return sum(p == t for p, t in zip(predictions, truths, strict=True)) / len(truths)


def character_error_rate(predictions: Sequence[str], truths: Sequence[str]) -> float:
    """Total edit distance over total truth length (can exceed 1 for long wrong predictions)."""
    _check_pairs(predictions, truths)
    total = sum(len(t) for t in truths)
    if total == 0:
        raise ValueError("truths are all empty")
    return sum(edit_distance(p, t) for p, t in zip(predictions, truths, strict=True)) / total
