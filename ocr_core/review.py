"""A review queue: images a model read with low confidence go to a folder where people fix labels.

Each queued image is copied into the review folder named by what the model read,
`<prediction>.png`, so a person only renames the misreads; `ocr-pipeline ingest REVIEW_DIR
--data-dir DATASET` then takes the corrected files into the dataset (it checks them like any new
data and ignores `review.jsonl`). Names that would clash get a suffix:

- a second image read as the same text, or one whose name is already in the folder, becomes
  `<prediction>-2.png`, `-3`, ... (the suffix fails the label check on purpose: ingest refuses
  the file until a person gives it its real label);
- an empty reading becomes `_empty_.png` (and `_empty_-2.png`, ...).

An image whose bytes are already in the folder is not queued twice. Every queued image adds one
JSON line to `review.jsonl`: the source path, the file name in the folder, the prediction and its
confidence.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from ocr_core.errors import ConfigError
from ocr_core.files import atomic_path, sha256_file

REVIEW_LOG = "review.jsonl"
EMPTY_READING = "_empty_"


class Reading(Protocol):
    """What the queue needs of a prediction (`ocr_core.inference.Prediction` fits)."""

    path: str
    text: str
    confidence: float


@dataclass(frozen=True)
class ReviewItem:
    """One image queued for review: where it came from and the name it got in the folder."""

    source: str
    file: str
    prediction: str
    confidence: float

    def as_dict(self) -> dict[str, str | float]:
        return asdict(self)


def review_name(prediction: str, taken: set[str]) -> str:
    """`<prediction>.png`, or with `-2`, `-3`, ... before `.png` when the name is taken."""
    stem = prediction or EMPTY_READING
    name, number = f"{stem}.png", 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}.png"
    return name


def queue_for_review(readings: Iterable[Reading], threshold: float,
                     review_dir: str | Path) -> list[ReviewItem]:
    """Copy every image read with confidence below `threshold` into `review_dir`.

    Args:
        readings: predictions with the image path, the text read and its confidence (0-1).
        threshold: confidence below which an image is queued (0 queues nothing, 1 nearly all).
        review_dir: the review folder; created when missing.

    Returns:
        The images queued by this call, in the order given (duplicates of files already in the
        folder are skipped).

    Raises:
        ConfigError: `threshold` is outside [0, 1].
    """
    if not 0 <= threshold <= 1:
        raise ConfigError(f"review threshold must be between 0 and 1, got {threshold}")
    folder = Path(review_dir)
    folder.mkdir(parents=True, exist_ok=True)
    taken = {p.name for p in folder.iterdir()}
    queued_bytes = {sha256_file(p) for p in folder.glob("*.png") if p.is_file()}
    items = []
    for reading in readings:
        if reading.confidence >= threshold:
            continue
        source = Path(reading.path).absolute()
        digest = sha256_file(source)
        if digest in queued_bytes:
            continue
        name = review_name(reading.text, taken)
        with atomic_path(folder / name) as tmp:
            shutil.copyfile(source, tmp)
        taken.add(name)
        queued_bytes.add(digest)
        items.append(ReviewItem(str(source), name, reading.text, float(reading.confidence)))
    if items:
        _append_log(folder / REVIEW_LOG, items)
    return items


def _append_log(path: Path, items: list[ReviewItem]) -> None:
    with open(path, "a", encoding="utf-8") as log:
        for item in items:
            log.write(json.dumps(item.as_dict()) + "\n")
        log.flush()
        os.fsync(log.fileno())


def read_review_log(review_dir: str | Path) -> list[ReviewItem]:
    """The items recorded in a review folder's `review.jsonl` (none if it has no log)."""
    path = Path(review_dir) / REVIEW_LOG
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ReviewItem(**json.loads(line)) for line in lines if line.strip()]
