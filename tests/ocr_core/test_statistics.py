"""Wilson intervals and the exact McNemar test, against values computed by hand."""

import pytest

from ocr_core.statistics import (
    compare_paired,
    evaluation_size_warning,
    format_accuracy,
    images_for_significance,
    mcnemar_one_sided,
    required_gain,
    smallest_evaluation_size,
    wilson_interval,
)


class TestWilson:
    def test_the_decisions_example(self):
        assert format_accuracy(102 / 104, 104) == "98.1% (102/104, 93.3-99.5%)"

    def test_all_right_has_a_lower_bound_below_one(self):
        # p = 1: low = 1 / (1 + z^2/n) = 1 / (1 + 3.8415/94) = 0.9607
        low, high = wilson_interval(94, 94)
        assert low == pytest.approx(0.96074, abs=1e-5) and high == 1.0
        assert format_accuracy(1.0, 94) == "100.0% (94/94, 96.1-100.0%)"

    def test_none_right(self):
        # p = 0: high = (z^2/n) / (1 + z^2/n) = 0.38415 / 1.38415 = 0.2775
        assert format_accuracy(0.0, 10) == "0.0% (0/10, 0.0-27.8%)"

    def test_half(self):
        # centre 0.5; half = z * sqrt(0.25/100 + z^2/40000) / (1 + z^2/100) = 0.0942
        low, high = wilson_interval(50, 100)
        assert (low, high) == pytest.approx((0.40383, 0.59617), abs=1e-5)

    def test_bad_counts_are_refused(self):
        with pytest.raises(ValueError, match="3/2"):
            wilson_interval(3, 2)


class TestMcNemar:
    @pytest.mark.parametrize(("challenger_only", "champion_only", "p_value"), [
        (1, 0, 1 / 2),  # one discordant image won: a coin flip
        (5, 0, 1 / 32),
        (12, 0, 1 / 4096),
        (6, 4, 386 / 1024),  # (C(10,6) + C(10,7) + ... + C(10,10)) / 2^10 = (210+120+45+10+1)/1024
        (8, 2, 56 / 1024),  # (45 + 10 + 1) / 1024
        (3, 3, 42 / 64),  # (20 + 15 + 6 + 1) / 64
        (0, 4, 1.0),
        (0, 0, 1.0),  # nothing discordant: no evidence
    ])
    def test_hand_computed_tails(self, challenger_only, champion_only, p_value):
        assert mcnemar_one_sided(challenger_only, champion_only) == pytest.approx(p_value)

    def test_negative_counts_are_refused(self):
        with pytest.raises(ValueError, match="discordant"):
            mcnemar_one_sided(-1, 0)

    def test_only_discordant_images_count(self):
        comparison = compare_paired(10, challenger_misread={"a", "b"},
                                    champion_misread={"b", "c", "d"}, significance=0.05)
        assert (comparison.challenger_only, comparison.champion_only) == (2, 1)
        assert comparison.p_value == pytest.approx(4 / 8)  # (C(3,2) + C(3,3)) / 2^3


class TestEvaluationSize:
    def test_wins_needed(self):
        assert images_for_significance(0.05) == 5  # 1/32 <= 0.05 < 1/16
        assert images_for_significance(0.01) == 7  # 1/128 <= 0.01 < 1/64

    def test_required_gain_absorbs_float_noise(self):
        assert required_gain(0.01, 100) == 1
        assert required_gain(0.01, 401) == 5
        assert required_gain(0.0, 100) == 0

    @pytest.mark.parametrize(("margin", "significance", "smallest"), [
        (0.01, 0.05, 401),  # ceil(0.01 n) >= 5 once n > 400
        (0.05, 0.05, 81),  # ceil(0.05 n) >= 5 once n > 80
        (0.02, 0.01, 301),  # ceil(0.02 n) >= 7 once n > 300
        (0.0, 0.05, 5),  # no margin: the set needs the 5 wins a significant result takes
    ])
    def test_smallest_size(self, margin, significance, smallest):
        assert smallest_evaluation_size(margin, significance) == smallest
        if margin:
            assert mcnemar_one_sided(required_gain(margin, smallest), 0) <= significance
            assert mcnemar_one_sided(required_gain(margin, smallest - 1), 0) > significance

    def test_the_warning_names_the_smallest_size(self):
        warning = evaluation_size_warning(100, 0.01, 0.05)
        assert "100 images" in warning and "at least 401 images" in warning
        assert evaluation_size_warning(401, 0.01, 0.05) is None
