"""CTC conventions, written down once.

- Class 0 is the CTC blank (`BLANK_INDEX`); characters are 1..len(vocabulary). The same index pads
  label tensors, so a label's length is its count of non-zero entries.
- Models emit logits of shape (batch, time, classes). `ctc_loss` takes them as they are (softmax is
  applied inside); decoding applies log-softmax first, so scores are log-probabilities.
- Greedy decoding takes the best class per step, merges repeats, then drops blanks: "aa-ab" -> "ab",
  "a-a" -> "aa". Beam search keeps `beam_width` prefixes and does the same collapse.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

BLANK_INDEX = 0


class Vocabulary:
    """Characters <-> class indices via `keras.layers.StringLookup`, with 0 kept for the blank."""

    def __init__(self, characters: str) -> None:
        if len(set(characters)) != len(characters) or not characters:
            raise ValueError(f"vocabulary must be distinct characters, got {characters!r}")
        self.characters = characters
        # The mask token "" takes index 0 = BLANK_INDEX and maps back to "", so blanks vanish on join.
        self.char_to_num = keras.layers.StringLookup(
            vocabulary=list(characters), mask_token="", num_oov_indices=0)
        self.num_to_char = keras.layers.StringLookup(
            vocabulary=list(characters), mask_token="", num_oov_indices=0, invert=True)

    @property
    def num_classes(self) -> int:
        """Characters plus the blank."""
        return len(self.characters) + 1

    def encode(self, label: str) -> np.ndarray:
        """Class indices of `label`'s characters, shape (len(label),)."""
        return np.asarray(self.char_to_num(list(label)), dtype="int32")

    def decode(self, indices) -> str:
        """Text of a sequence of class indices; blanks (0) and padding (-1) are dropped."""
        indices = np.asarray(indices)
        indices = indices[indices > BLANK_INDEX]
        return "".join(self.characters[i - 1] for i in indices)


@keras.saving.register_keras_serializable(package="ocr_core")
class CTCLoss(keras.losses.Loss):
    """CTC loss of padded integer labels (batch, max_len) against logits (batch, time, classes)."""

    def __init__(self, name: str = "ctc_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        batch = ops.shape(y_pred)[0]
        label_length = ops.sum(ops.cast(ops.not_equal(y_true, BLANK_INDEX), "int32"), axis=-1)
        logit_length = ops.full((batch,), ops.shape(y_pred)[1], dtype="int32")
        return ops.ctc_loss(y_true, y_pred, label_length, logit_length, mask_index=BLANK_INDEX)


def ctc_decode(
    logits, strategy: str = "greedy", beam_width: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Best path per sample.

    Args:
        logits: (batch, time, classes) model outputs.
        strategy: "greedy" or "beam_search".
        beam_width: beams kept by beam search.

    Returns:
        indices: (batch, time) int32 class indices, padded with -1.
        log_probs: (batch,) log-probability of each path (greedy: of the best alignment).
    """
    if strategy not in ("greedy", "beam_search"):
        raise ValueError(f"strategy must be 'greedy' or 'beam_search', got {strategy!r}")
    log_probs = ops.log_softmax(ops.convert_to_tensor(logits, "float32"), axis=-1)
    batch, steps = ops.shape(log_probs)[0], ops.shape(log_probs)[1]
    decoded, scores = ops.ctc_decode(
        log_probs,
        ops.full((batch,), steps, dtype="int32"),
        strategy=strategy,
        beam_width=beam_width,
        top_paths=1,
        mask_index=BLANK_INDEX,
    )
    scores = ops.convert_to_numpy(scores)[:, 0]
    # tf's greedy decoder reports the negated sum of the best log-probabilities.
    path_log_probs = -scores if strategy == "greedy" else scores
    return ops.convert_to_numpy(decoded[0]), path_log_probs


def decode_texts(
    logits, vocabulary: Vocabulary, strategy: str = "greedy", beam_width: int = 16
) -> tuple[list[str], np.ndarray]:
    """Decoded strings and their confidences (path probabilities in [0, 1])."""
    indices, log_probs = ctc_decode(logits, strategy=strategy, beam_width=beam_width)
    return [vocabulary.decode(row) for row in indices], np.exp(log_probs)
