"""Read captchas with a bundle: predictions for files, and scores against labels in file names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import tensorflow as tf

from ocr_core.bundle import Bundle
from ocr_core.ctc import decode_texts
from ocr_core.dataset import label_of, list_pngs
from ocr_core.errors import DataError
from ocr_core.metrics import character_error_rate, sequence_accuracy
from ocr_core.pipeline import decode_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Prediction:
    """One image read by a model."""

    path: str
    text: str
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given and the PNGs inside given folders, each checked to be a PNG.

    Raises:
        DataError: a path does not exist or a file is not a PNG.
    """
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            paths += list_pngs(item)
        elif item.is_file():
            paths.append(item)
        else:
            raise DataError(f"no such file or folder: {item}")
    for path in paths:
        with open(path, "rb") as handle:
            if handle.read(8) != PNG_SIGNATURE:
                raise DataError(f"not a PNG file: {path}")
    return paths


def _read(path: Path, height: int, width: int) -> tf.Tensor:
    try:
        return decode_image(tf.constant(path.read_bytes()), height, width)
    except tf.errors.InvalidArgumentError as error:
        raise DataError(f"cannot decode {path}: {error.message.splitlines()[0]}") from None


def predict_files(
    bundle: Bundle, paths: Sequence[Path], *, batch_size: int = 64,
    strategy: str = "greedy", beam_width: int = 16,
) -> list[Prediction]:
    """Read every image in `paths` with `bundle`, in order."""
    results: list[Prediction] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images = tf.stack([_read(p, bundle.height, bundle.width) for p in chunk])
        texts, confidences = decode_texts(
            bundle.model(images, training=False), bundle.vocabulary, strategy, beam_width)
        results += [Prediction(str(p), t, float(c))
                    for p, t, c in zip(chunk, texts, confidences, strict=True)]
    return results


@dataclass(frozen=True)
class Evaluation:
    """Scores of predictions against the labels in the file names."""

    count: int
    sequence_accuracy: float
    character_error_rate: float
    misreads: list[dict]

    def as_dict(self) -> dict:
        return asdict(self)


def score(predictions: Sequence[Prediction]) -> Evaluation:
    """Compare each prediction to the label its file name carries."""
    texts = [p.text for p in predictions]
    truths = [label_of(p.path) for p in predictions]
    misreads = [{"path": p.path, "truth": t, "prediction": p.text, "confidence": p.confidence}
                for p, t in zip(predictions, truths, strict=True) if p.text != t]
    return Evaluation(len(predictions), sequence_accuracy(texts, truths),
                      character_error_rate(texts, truths), misreads)

