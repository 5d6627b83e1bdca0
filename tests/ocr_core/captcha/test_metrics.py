import pytest

from ocr_core.captcha.metrics import character_error_rate, edit_distance, sequence_accuracy


class TestEditDistance:
    @pytest.mark.parametrize(("a", "b", "distance"), [
        ("", "", 0), ("abc", "abc", 0), ("abc", "", 3), ("", "ab", 2),
        ("kitten", "sitting", 3), ("2b827", "2b87", 1), ("abcde", "edcba", 4),
    ])
    def test_known_pairs(self, a, b, distance):
        assert edit_distance(a, b) == distance
        assert edit_distance(b, a) == distance


class TestSequenceAccuracy:
    def test_counts_whole_labels(self):
        assert sequence_accuracy(["abcde", "abcdf", "x"], ["abcde", "abcde", "x"]) == pytest.approx(2 / 3)

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="2 predictions for 1 truths"):
            sequence_accuracy(["a", "b"], ["a"])

    def test_empty(self):
        with pytest.raises(ValueError, match="no samples"):
            sequence_accuracy([], [])


class TestCharacterErrorRate:
    def test_total_edits_over_total_truth_length(self):
        # 1 substitution + 1 deletion over 10 truth characters
        assert character_error_rate(["abcdx", "abcd"], ["abcde", "abcde"]) == pytest.approx(0.2)

    def test_perfect_is_zero(self):
        assert character_error_rate(["22d5n"], ["22d5n"]) == 0.0
