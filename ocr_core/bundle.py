"""A trained model is a folder (a bundle): everything needed to use it and to know where it came from.

    model.keras      Keras inference model, logits out (standard layers: loads in safe mode)
    bundle.json      vocabulary, input size, recipe, CTC blank index, training manifest hash, versions
    metrics.json     validation metrics of the kept epoch, and which epoch was kept and why
                     (test metrics live in the evaluation's folder: a bundle is never changed
                     once written)
    params.json      the run parameters that produced it
    history.json     per-epoch training history

A bundle may come from elsewhere (a registry a colleague writes to), and its vocabulary becomes
file names (`predict --review-dir` names each image by what the model read): a vocabulary is
checked when a bundle is loaded or saved, and one with an entry that could steer a path is refused.
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from ocr_core import ctc
from ocr_core.ctc import BLANK_INDEX, Vocabulary
from ocr_core.errors import ModelError
from ocr_core.files import atomic_path, read_json, write_json
from ocr_core.version import __version__, code_version

BUNDLE_FORMAT = 1
MODEL_FILE = "model.keras"
BUNDLE_FILE = "bundle.json"
_SEPARATORS = frozenset({"/", "\\", os.sep, os.altsep or "/"})
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # control, format, ..., breaks


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle."""

    path: Path
    model: keras.Model
    vocabulary: Vocabulary
    height: int
    width: int
    info: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.path / "metrics.json"
        return read_json(path) if path.exists() else {}


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


def save_bundle(
    path: str | Path,
    model: keras.Model,
    *,
    vocabulary: str,
    recipe: str,
    height: int,
    width: int,
    training_manifest_sha256: str,
    params: dict[str, Any],
    step_key: str | None = None,
    history: dict[str, list[float]],
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a complete bundle at `path` atomically: readers see all of it or none.

    Args:
        training_manifest_sha256: content hash of the manifest of the images it was trained on
            (their labels and bytes: `ocr_core.dataset`), so a copied bundle traces to its data.
        step_key: the key of the training step that made it, when a pipeline step did.
    """
    path = Path(path)
    check_vocabulary(vocabulary, path / BUNDLE_FILE)
    with atomic_path(path, is_dir=True) as tmp:
        # An uncompiled copy: no optimizer state or custom loss, so it loads anywhere in safe mode.
        keras.Model(model.inputs, model.outputs, name=model.name).save(tmp / MODEL_FILE)
        write_json(tmp / BUNDLE_FILE, {
            "format": BUNDLE_FORMAT,
            "vocabulary": vocabulary,
            "blank_index": BLANK_INDEX,
            "recipe": recipe,
            "input": {"height": height, "width": width, "channels": 1, "layout": "width-major"},
            "training_manifest_sha256": training_manifest_sha256,
            **({"training_step_key": step_key} if step_key else {}),
            "package_version": __version__,
            "code_version": code_version(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
        write_json(tmp / "params.json", params)
        write_json(tmp / "history.json", history)
        write_json(tmp / "metrics.json", metrics or {})
    return path


def bundle_dir(path: str | Path) -> Path:
    """The bundle folder for a folder or its `model.keras`.

    Raises:
        ModelError: `path` is neither a bundle folder nor a bundle's model file.
    """
    path = Path(path)
    folder = path.parent if path.name == MODEL_FILE else path
    if not path.exists():
        raise ModelError(f"no model at {path}")
    if not (folder / MODEL_FILE).is_file() or not (folder / BUNDLE_FILE).is_file():
        raise ModelError(f"not a model bundle (needs {MODEL_FILE} and {BUNDLE_FILE}): {path}")
    return folder


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder (or its `model.keras`) for inference.

    Raises:
        ModelError: no bundle there, a vocabulary that could steer file names, or a model file
            that does not load.
    """
    folder = bundle_dir(path)
    info = read_json(folder / BUNDLE_FILE)
    vocabulary = check_vocabulary(info.get("vocabulary"), folder / BUNDLE_FILE)
    if info.get("blank_index") != ctc.BLANK_INDEX:
        raise ModelError(f"{folder}: blank index {info.get('blank_index')} is not {BLANK_INDEX}")
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as error:  # keras raises many types for a broken file
        raise ModelError(f"cannot load {folder / MODEL_FILE}: {error}") from error
    return Bundle(folder, model, Vocabulary(vocabulary), info["input"]["height"],
                  info["input"]["width"], info)

