"""Which characters a model may read: each vocabulary entry is one character that can stand in a
file name, because predictions become file names (`predict --review-dir`, `ocr_core.captcha.review`).

Refused: path separators, the dot (`..` names a folder), control, format and unassigned
characters and line or paragraph separators (NUL, newline, the right-to-left override), and
entries that are not exactly one character. Checked on every bundle loaded or saved
(`ocr_core.bundle.folder`) and on every label when a dataset is validated (`ocr_core.data.validation`), so a
dataset whose labels could not make a bundle fails before training, not after.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from ocr_core.errors import ModelError

_SEPARATORS = frozenset({"/", "\\", os.sep, os.altsep or "/"})
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # control, format, ..., breaks


def vocabulary_problem(entry: object) -> str | None:
    """Why `entry` cannot be a vocabulary entry, or None if it can."""
    if not isinstance(entry, str) or len(entry) != 1:
        return "not a single character"
    if entry in _SEPARATORS:
        return "a path separator"
    if entry == ".":
        return "a dot (with '..' it names folders)"
    if unicodedata.category(entry) in _UNPRINTABLE:
        return "a control or unprintable character"
    return None


def check_vocabulary(vocabulary: object, source: str | Path) -> str:
    """`vocabulary` (a string, or a list of one-character strings) as a string, if every entry is
    one character that can stand in a file name, and none repeats.

    Raises:
        ModelError: naming `source` (the bundle file) and the first bad entry.
    """
    entries = list(vocabulary) if isinstance(vocabulary, str | list) else None
    if not entries:
        raise ModelError(f"{source}: vocabulary must be a non-empty string of characters, "
                         f"got {vocabulary!r}")
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        problem = vocabulary_problem(entry)
        if problem is None and entry in seen:
            problem = "a duplicate"
        if problem is not None:
            raise ModelError(f"{source}: vocabulary entry {position} ({entry!r}) is {problem}; "
                             "refused: predictions become file names")
        seen.add(entry)
    return "".join(entries)
