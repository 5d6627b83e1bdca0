"""The champion/challenger rule: a gain must reach the margin and pass the paired test."""

import pytest

from ocr_core.registry.gate import Scores, decide


def scores(right: int, count: int = 100, error_rate: float = 0.1,
           first_right: int = 0) -> Scores:
    """A model that reads images first_right .. first_right + right - 1 of `count` right."""
    misread = frozenset(f"i{k}" for k in range(count) if not first_right <= k < first_right + right)
    return Scores(right / count, error_rate, count, misread)


class TestDecide:
    def test_first_model_is_promoted(self):
        decision = decide(scores(0, 20), None, margin=0.01)
        assert decision.promote and "no champion" in decision.reason
        assert decision.comparison is None

    def test_one_image_better_on_100_keeps_the_champion_and_says_why(self):
        decision = decide(scores(79), scores(78), margin=0.01)
        assert not decision.promote
        assert decision.comparison.challenger_only == 1
        assert decision.comparison.champion_only == 0
        assert decision.comparison.p_value == pytest.approx(0.5)
        assert "not significantly (p = 0.5000 > 0.05)" in decision.reason
        assert "1 image only the challenger reads right, 0 only the champion" in decision.reason
        assert "79.0% (79/100, 70.0-85.8%)" in decision.reason

    def test_a_clearly_better_model_is_promoted(self):
        decision = decide(scores(90), scores(78), margin=0.01)
        assert decision.promote, decision.reason
        assert decision.comparison.p_value == pytest.approx(0.5 ** 12)
        assert "significant (p = 0.0002 <= 0.05)" in decision.reason

    def test_a_gain_with_losses_must_still_be_significant(self):
        # the challenger reads i78-i83 that the champion misses and misses i0-i3 that it reads
        decision = decide(scores(80, first_right=4), scores(78), margin=0.02)
        assert (decision.comparison.challenger_only, decision.comparison.champion_only) == (6, 4)
        assert decision.comparison.p_value == pytest.approx(386 / 1024)
        assert not decision.promote and "gains 2 images, but not significantly" in decision.reason

    def test_gain_below_the_margin_keeps_the_champion(self):
        decision = decide(scores(81), scores(78), margin=0.05)
        assert not decision.promote and "below the margin 0.05 (5 images)" in decision.reason

    def test_a_stricter_significance_keeps_a_gain_a_looser_one_promotes(self):
        challenger, champion = scores(84), scores(78)  # 6 wins, no loss: p = 1/64
        assert decide(challenger, champion, margin=0.01, significance=0.05).promote
        assert not decide(challenger, champion, margin=0.01, significance=0.01).promote

    def test_worse_challenger_is_kept_out_even_with_a_lower_cer(self):
        decision = decide(scores(70, error_rate=0.01), scores(78), margin=0.0)
        assert not decision.promote and decision.reason.startswith("worse")

    def test_a_tie_keeps_the_champion_whatever_the_error_rates(self):
        decision = decide(scores(78, error_rate=0.01), scores(78, error_rate=0.5), margin=0.0)
        assert not decision.promote and decision.reason.startswith("no gain")

    def test_float_noise_is_a_tie(self):
        # 0.1 + 0.2 != 0.3 in floating point; the same count of right answers must tie.
        challenger = Scores(0.1 + 0.2, 0.5, 10, frozenset(f"i{k}" for k in range(3, 10)))
        champion = Scores(0.3, 0.5, 10, frozenset(f"i{k}" for k in range(3, 10)))
        assert not decide(challenger, champion, margin=0.0).promote

    def test_failed_challenger_never_promotes(self):
        assert not decide(None, scores(50), margin=0.0).promote
        assert not decide(None, None, margin=0.0).promote

    def test_scores_on_different_sets_are_refused(self):
        with pytest.raises(ValueError, match="different sets"):
            decide(scores(5, 10), scores(5, 20), margin=0.0)

    def test_scores_without_per_image_results_are_refused(self):
        with pytest.raises(ValueError, match="images each model misread"):
            decide(Scores(0.5, 0.1, 10), scores(5, 10), margin=0.0)

    def test_parameters_out_of_range_are_refused(self):
        with pytest.raises(ValueError, match="margin"):
            decide(scores(5, 10), None, margin=-0.1)
        with pytest.raises(ValueError, match="significance"):
            decide(scores(5, 10), None, margin=0.0, significance=1.0)
