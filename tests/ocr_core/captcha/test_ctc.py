import numpy as np
import pytest
from keras import ops

from ocr_core.captcha.ctc import BLANK_INDEX, CTCLoss, Vocabulary, ctc_decode, decode_texts, greedy_decode

# Classes: 0 = blank, 1 = "a", 2 = "b", 3 = "c".
VOCABULARY = "abc"


def _log(probabilities):
    return np.log(np.asarray(probabilities, dtype="float32"))


class TestVocabulary:
    def test_round_trip_keeps_zero_for_blank(self):
        vocabulary = Vocabulary(VOCABULARY)
        assert vocabulary.num_classes == 4
        np.testing.assert_array_equal(vocabulary.encode("cab"), [3, 1, 2])
        assert vocabulary.decode([3, 1, 2]) == "cab"
        assert BLANK_INDEX == 0

    def test_decode_drops_blanks_and_padding(self):
        assert Vocabulary(VOCABULARY).decode([2, 0, 0, 1, -1, -1]) == "ba"

    def test_encode_refuses_a_character_outside_the_vocabulary(self):
        with pytest.raises(ValueError, match="label 'cad' has 'd', which is not in the vocabulary 'abc'"):
            Vocabulary(VOCABULARY).encode("cad")

    def test_encode_of_an_empty_label_is_empty(self):
        assert Vocabulary(VOCABULARY).encode("").shape == (0,)

    def test_decode_batch_is_decode_per_row(self):
        vocabulary = Vocabulary(VOCABULARY)
        rows = [[2, 0, 0, 1, -1, -1], [3, 3, -1, -1, -1, -1], [-1] * 6]
        assert vocabulary.decode_batch(np.array(rows)) == ["ba", "cc", ""]

    def test_rejects_repeated_characters(self):
        with pytest.raises(ValueError, match="distinct"):
            Vocabulary("aab")


class TestGreedyDecoding:
    def test_repeats_merge_and_blank_separates(self):
        # best path a a - a b b -> "aab"
        probabilities = [[
            [0.1, 0.7, 0.1, 0.1],
            [0.1, 0.7, 0.1, 0.1],
            [0.7, 0.1, 0.1, 0.1],
            [0.1, 0.7, 0.1, 0.1],
            [0.1, 0.1, 0.7, 0.1],
            [0.1, 0.1, 0.7, 0.1],
        ]]
        texts, confidences = decode_texts(_log(probabilities), Vocabulary(VOCABULARY))
        assert texts == ["aab"]
        np.testing.assert_allclose(confidences, [0.7**6], rtol=1e-5)

    def test_all_blank_is_empty_text(self):
        probabilities = [[[0.9, 0.05, 0.03, 0.02]] * 3]
        texts, _ = decode_texts(_log(probabilities), Vocabulary(VOCABULARY))
        assert texts == [""]

    def test_batch_rows_are_independent(self):
        probabilities = [
            [[0.1, 0.1, 0.1, 0.7], [0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]],  # c - c
            [[0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.7, 0.1]],  # b b b
        ]
        indices, _ = ctc_decode(_log(probabilities))
        assert indices.shape == (2, 3)
        texts, _ = decode_texts(_log(probabilities), Vocabulary(VOCABULARY))
        assert texts == ["cc", "b"]

    def test_indices_are_left_aligned_and_padded(self):
        # - a a - b -> [1, 2, -1, -1, -1]
        probabilities = [[[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1],
                          [0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]]]
        indices, log_probs = ctc_decode(_log(probabilities))
        np.testing.assert_array_equal(indices, [[1, 2, -1, -1, -1]])
        assert indices.dtype == np.int32
        np.testing.assert_allclose(log_probs, [5 * np.log(0.7)], rtol=1e-5)

    def test_numpy_greedy_matches_tensorflow_decoder(self):
        logits = np.random.default_rng(0).normal(0, 3, size=(64, 16, 20)).astype("float32")
        decoded, scores = ops.ctc_decode(ops.log_softmax(logits, axis=-1), np.full(64, 16, "int32"),
                                         strategy="greedy", mask_index=BLANK_INDEX)
        indices, log_probs = greedy_decode(logits)
        np.testing.assert_array_equal(indices, ops.convert_to_numpy(decoded[0]))
        np.testing.assert_allclose(log_probs, -ops.convert_to_numpy(scores)[:, 0], rtol=1e-5)

    def test_unknown_strategy(self):
        with pytest.raises(ValueError, match="greedy"):
            ctc_decode(_log([[[0.7, 0.1, 0.1, 0.1]]]), strategy="viterbi")


class TestBeamSearchDecoding:
    def test_beam_sums_alignments_where_greedy_does_not(self):
        # Greedy takes the single best path "- - -" (blank, p=0.4^3 ≈ 0.064), but "a" has more
        # total probability spread over many alignments (a--, -a-, --a, aa-, ...).
        probabilities = [[[0.4, 0.35, 0.25, 0.0 + 1e-6]] * 3]
        greedy, _ = decode_texts(_log(probabilities), Vocabulary(VOCABULARY))
        beam, confidence = decode_texts(_log(probabilities), Vocabulary(VOCABULARY),
                                        strategy="beam_search", beam_width=8)
        assert greedy == [""]
        assert beam == ["a"]
        assert 0 < confidence[0] < 1


class TestCTCLoss:
    def test_perfect_alignment_has_low_loss(self):
        labels = np.array([[1, 2, 0]])  # "ab", padded with the blank
        confident = _log([[[0.01, 0.97, 0.01, 0.01], [0.97, 0.01, 0.01, 0.01],
                           [0.01, 0.01, 0.97, 0.01]]])
        wrong = _log([[[0.01, 0.01, 0.01, 0.97]] * 3])
        loss = CTCLoss()
        assert float(loss(labels, confident)) < 0.2
        assert float(loss(labels, wrong)) > 5

    def test_matches_negative_log_of_summed_paths(self):
        # T=2, label "a": valid paths a-, -a, aa -> p = .5*.5 + .5*.5 + .5*.5 = .75
        probabilities = [[[0.5, 0.5, 1e-9, 1e-9], [0.5, 0.5, 1e-9, 1e-9]]]
        loss = CTCLoss()(np.array([[1]]), _log(probabilities))
        np.testing.assert_allclose(float(loss), -np.log(0.75), rtol=1e-4)
