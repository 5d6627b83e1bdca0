"""A review queue: images a model read with low confidence go to a folder where people fix labels.

Each queued image is copied into the review folder named by what the model read,
`<prediction>.png`, so a person only renames the misreads; `ocr-pipeline ingest REVIEW_DIR
--data-dir DATASET` then takes the corrected files into the dataset (it checks them like any new
data and ignores `review.jsonl`). Names that would clash get a suffix:

- a second image read as the same text, or one whose name is already in the folder, becomes
  `<prediction>-2.png`, `-3`, ... (the suffix fails the label check on purpose: ingest refuses
  the file until a person gives it its real label);
- an empty reading becomes `_empty_.png` (and `_empty_-2.png`, ...);
- a character that could steer the path or hide the file (a path separator, `%`, a control
  character, a leading dot) is written as `%XX` of its UTF-8 bytes, so `../x` becomes
  `%2E.%2Fx.png` (escaped names fail the label check too); and the final path is checked to be
  directly inside the review folder before anything is written.

An image whose bytes are already in the folder is not queued twice. Every queued image adds one
JSON line to `review.jsonl`: the source path, the file name in the folder, the prediction and its
confidence.
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from ocr_core.errors import ConfigError, ModelError
from ocr_core.files import atomic_path, sha256_file

REVIEW_LOG = "review.jsonl"
EMPTY_READING = "_empty_"
MAX_STEM_BYTES = 200  # file names are at most 255 bytes; room for "-NNN.png"
_ESCAPED = frozenset({"/", "\\", "%", os.sep, os.altsep or "/"})


class Reading(Protocol):
    """What the queue needs of a prediction (`ocr_core.captcha.inference.Prediction` fits)."""

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


def _escape(character: str, first: bool) -> str:
    if (character in _ESCAPED or (first and character == ".")
            or unicodedata.category(character)[0] == "C" or unicodedata.category(character) in ("Zl", "Zp")):
        return "".join(f"%{byte:02X}" for byte in character.encode("utf-8", "surrogatepass"))
    return character


def safe_stem(prediction: str) -> str:
    """`prediction` as a file name stem that names a plain file in the folder it is put in."""
    stem = "".join(_escape(character, index == 0) for index, character in enumerate(prediction))
    while len(stem.encode("utf-8")) > MAX_STEM_BYTES:
        stem = stem[:-1]
    return stem or EMPTY_READING


def review_name(prediction: str, taken: set[str]) -> str:
    """`<prediction>.png` (escaped, see the module's docstring), or with `-2`, `-3`, ... before
    `.png` when the name is taken."""
    stem = safe_stem(prediction)
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
        ModelError: a name that would land outside the folder (cannot happen with the escaping;
            checked before each write all the same).
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
        destination = _inside(folder, name, reading.text)
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)
        taken.add(name)
        queued_bytes.add(digest)
        items.append(ReviewItem(str(source), name, reading.text, float(reading.confidence)))
    if items:
        _append_log(folder / REVIEW_LOG, items)
    return items


def _inside(folder: Path, name: str, prediction: str) -> Path:
    """`folder / name` if it resolves to a file directly inside `folder`."""
    destination = folder / name
    if destination.resolve().parent != folder.resolve():
        raise ModelError(f"the prediction {prediction!r} would be written outside the review "
                         f"folder {folder} (as {name!r}); refused")
    return destination


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
