"""How sure a figure is: Wilson intervals for accuracies, and the exact McNemar test of the gate.

An accuracy is reported with its count and a Wilson 95% interval, `98.1% (102/104, 93.3-99.5%)`.
Two models read the same images, so the gate compares them pairwise: only the discordant images
(read right by one model, wrong by the other) carry evidence, and under "no difference" each
falls either way with probability 1/2. The one-sided exact McNemar p-value is the binomial tail
P(X >= challenger_only) for X ~ Binomial(challenger_only + champion_only, 1/2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
_TOLERANCE = 1e-9  # accuracies are counts over the same set; this only absorbs float noise


def wilson_interval(successes: int, count: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (default 95%) of a proportion `successes / count`.

    Raises:
        ValueError: `count` < 1 or `successes` outside [0, count].
    """
    if count < 1 or not 0 <= successes <= count:
        raise ValueError(f"need 0 <= successes <= count and count >= 1, got {successes}/{count}")
    p = successes / count
    denominator = 1 + z * z / count
    centre = (p + z * z / (2 * count)) / denominator
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denominator
    low = 0.0 if successes == 0 else centre - half  # exact at the ends, free of float noise
    high = 1.0 if successes == count else centre + half
    return low, high


def correct_count(accuracy: float, count: int) -> int:
    """The number of correct images behind an accuracy measured on `count` images."""
    return round(accuracy * count)


def format_accuracy(accuracy: float, count: int) -> str:
    """An accuracy as a person should read it: `98.1% (102/104, 93.3-99.5%)`."""
    if count < 1:
        return f"{100 * accuracy:.1f}% (no images)"
    successes = correct_count(accuracy, count)
    low, high = wilson_interval(successes, count)
    return (f"{100 * successes / count:.1f}% ({successes}/{count}, "
            f"{100 * low:.1f}-{100 * high:.1f}%)")


def mcnemar_one_sided(challenger_only: int, champion_only: int) -> float:
    """Exact one-sided McNemar p-value that the challenger reads more images right.

    Args:
        challenger_only: images the challenger reads right and the champion wrong.
        champion_only: images the champion reads right and the challenger wrong.
    Returns:
        P(X >= challenger_only) for X ~ Binomial(challenger_only + champion_only, 1/2);
        1.0 when no image is discordant.
    """
    if challenger_only < 0 or champion_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {challenger_only}, {champion_only}")
    pairs = challenger_only + champion_only
    tail = sum(math.comb(pairs, k) for k in range(challenger_only, pairs + 1))
    return tail / 2**pairs


def required_gain(margin: float, count: int) -> int:
    """Images a challenger must gain on `count` images for its accuracy gain to reach `margin`."""
    return max(0, math.ceil(margin * count - _TOLERANCE))


def images_for_significance(significance: float) -> int:
    """The fewest discordant images, all won, that reach p <= `significance` (5 for 0.05)."""
    if not 0 < significance < 1:
        raise ValueError(f"significance must be in (0, 1), got {significance}")
    wins = 1
    while mcnemar_one_sided(wins, 0) > significance:
        wins += 1
    return wins


def smallest_evaluation_size(margin: float, significance: float) -> int:
    """The smallest evaluation set on which a challenger gaining just the margin, with no loss,
    can be significant: the smallest n with 0.5 ** required_gain(margin, n) <= significance.

    With a margin of 0 no gain is required, and the set needs only as many images as a
    significant win takes.
    """
    wins = images_for_significance(significance)
    if margin <= 0:
        return wins
    count = max(1, math.floor((wins - 1) / margin) - 1)
    while required_gain(margin, count) < wins:
        count += 1
    return count


def evaluation_size_warning(count: int, margin: float, significance: float) -> str | None:
    """Why an evaluation set of `count` images cannot show the margin as significant, or None."""
    smallest = smallest_evaluation_size(margin, significance)
    if count >= smallest:
        return None
    return (f"the evaluation set has {count} images: a challenger gaining just the promotion "
            f"margin {margin:g} ({required_gain(margin, count)} images) can never reach "
            f"p <= {significance:g}, so only a larger gain promotes; a set of at least "
            f"{smallest} images could show the margin as significant")


@dataclass(frozen=True)
class PairedComparison:
    """The one-sided exact McNemar test of a challenger against the champion on one set."""

    count: int
    challenger_only: int
    champion_only: int
    p_value: float
    significance: float
    test: str = "one-sided exact McNemar"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def compare_paired(count: int, challenger_misread: set[str], champion_misread: set[str],
                   significance: float) -> PairedComparison:
    """Count the discordant images (by image id) and test whether the challenger reads more right."""
    challenger_only = len(champion_misread - challenger_misread)
    champion_only = len(challenger_misread - champion_misread)
    return PairedComparison(count, challenger_only, champion_only,
                            mcnemar_one_sided(challenger_only, champion_only), significance)
