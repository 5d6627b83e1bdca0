"""Results files of `predict`: CSV (`path,text,confidence`) or JSON lines, one row per image.

A large read is written in parts (one per shard, in any order, on any worker) and the parts are
joined into the results file in input order; every file appears complete or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from ocr_core.captcha.inference import Prediction
from ocr_core.errors import DataError
from ocr_core.files import atomic_path

Format = Literal["csv", "jsonl"]
CSV_COLUMNS = ("path", "text", "confidence")


def format_rows(predictions: Iterable[Prediction], fmt: Format) -> str:
    """The rows of `predictions` in `fmt`, without a header."""
    if fmt == "jsonl":
        return "".join(json.dumps(p.as_dict()) + "\n" for p in predictions)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows((p.path, p.text, repr(p.confidence)) for p in predictions)
    return buffer.getvalue()


def write_part(predictions: Sequence[Prediction], path: str | Path, fmt: Format) -> Path:
    """Write one part (rows, no header) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(format_rows(predictions, fmt), encoding="utf-8")
    return path


def join_parts(parts: Sequence[str | Path], target: str | Path, fmt: Format) -> Path:
    """Write `target` from `parts` in the given order (CSV: one header first), atomically."""
    target = Path(target)
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            out.write(",".join(CSV_COLUMNS) + "\n")
        for part in parts:
            with open(part, encoding="utf-8", newline="") as handle:
                shutil.copyfileobj(handle, out)
    return target


def read_predictions(path: str | Path) -> list[Prediction]:
    """The predictions in a results file (.csv or .jsonl).

    Raises:
        DataError: the file is not a results file of either format.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line]
            return [Prediction(r["path"], r["text"], float(r["confidence"])) for r in rows]
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise DataError(f"{path}: expected the columns {','.join(CSV_COLUMNS)}")
        return [Prediction(r["path"], r["text"], float(r["confidence"])) for r in reader]
    except (KeyError, ValueError, TypeError) as error:
        raise DataError(f"{path} is not a predictions file: {error}") from None
