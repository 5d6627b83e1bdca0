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
    """Characters <-> class indices by table lookup, with 0 kept for the blank."""

    def __init__(self, characters: str) -> None:
        if len(set(characters)) != len(characters) or not characters:
            raise ValueError(f"vocabulary must be distinct characters, got {characters!r}")
        self.characters = characters
        self.index = {character: i for i, character in enumerate(characters, start=1)}

    @property
    def num_classes(self) -> int:
        """Characters plus the blank."""
        return len(self.characters) + 1

    def encode(self, label: str) -> np.ndarray:
        """Class indices of `label`'s characters, shape (len(label),).

        Raises:
            ValueError: `label` has a character outside the vocabulary.
        """
        try:
            return np.array([self.index[character] for character in label], dtype="int32")
        except KeyError as error:
            raise ValueError(f"label {label!r} has {error.args[0]!r}, which is not in the "
                             f"vocabulary {self.characters!r}") from None

    def decode(self, indices) -> str:
        """Text of a sequence of class indices; blanks (0) and padding (-1) are dropped."""
        indices = np.asarray(indices)
        indices = indices[indices > BLANK_INDEX]
        return "".join(self.characters[i - 1] for i in indices)

    def decode_batch(self, indices) -> list[str]:
        """Texts of a (batch, time) array of class indices; blanks (0) and padding (-1) drop."""
        table = np.array(["", *self.characters, ""])  # index -1 (padding) reads the last ""
        return ["".join(row) for row in table[np.asarray(indices)].tolist()]


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
        strategy: "greedy" (numpy, vectorised over the batch) or "beam_search" (TensorFlow's).
        beam_width: beams kept by beam search.

    Returns:
        indices: (batch, time) int32 class indices, padded with -1.
        log_probs: (batch,) log-probability of each path (greedy: of the best alignment).
    """
    if strategy not in ("greedy", "beam_search"):
        raise ValueError(f"strategy must be 'greedy' or 'beam_search', got {strategy!r}")
    if strategy == "greedy":
        return greedy_decode(logits)
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
    return ops.convert_to_numpy(decoded[0]), ops.convert_to_numpy(scores)[:, 0]


def greedy_decode(logits) -> tuple[np.ndarray, np.ndarray]:
    """Greedy CTC decoding of a whole batch at once, in numpy (what `ctc_decode` returns for it).

    The best class per step; repeats merge, then blanks drop. Same results as TensorFlow's
    `ctc_greedy_decoder` (ties go to the lower class index in both), without a graph per call.

    Args:
        logits: (batch, time, classes) model outputs.

    Returns:
        indices: (batch, time) int32 class indices, left-aligned, padded with -1.
        log_probs: (batch,) log-probability of the best alignment.
    """
    logits = np.asarray(logits, dtype="float32")
    best = logits.argmax(axis=-1)  # (batch, time)
    # log_softmax at the best class: its logit minus logsumexp over the classes.
    peak = logits.max(axis=-1)  # (batch, time) = the best class's logit
    log_sum = peak + np.log(np.exp(logits - peak[..., None]).sum(axis=-1))
    log_probs = (peak - log_sum).sum(axis=-1)  # (batch,)
    new_symbol = np.ones_like(best, dtype=bool)
    new_symbol[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = new_symbol & (best != BLANK_INDEX)  # (batch, time)
    # Left-align the kept steps: a stable sort puts kept (False after ~) before dropped.
    order = np.argsort(~keep, axis=1, kind="stable")
    indices = np.where(np.take_along_axis(keep, order, axis=1),
                       np.take_along_axis(best, order, axis=1), -1)
    return indices.astype("int32"), log_probs


def decode_texts(
    logits, vocabulary: Vocabulary, strategy: str = "greedy", beam_width: int = 16
) -> tuple[list[str], np.ndarray]:
    """Decoded strings and their confidences (path probabilities in [0, 1])."""
    indices, log_probs = ctc_decode(logits, strategy=strategy, beam_width=beam_width)
    return vocabulary.decode_batch(indices), np.exp(log_probs)
