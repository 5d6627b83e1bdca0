"""A trained model is a folder (a bundle): everything needed to use it and to know where it came from.

    model.keras      Keras inference model (standard layers: loads in safe mode without this project)
    bundle.json      kind (captcha | digits), input, recipe, the kind's fields (vocabulary and CTC
                     blank index, or classes and output kind), training data content hash, step
                     key, versions: `ocr_core.bundle.format`
    metrics.json     validation metrics of the kept epoch, and which epoch was kept and why
                     (test metrics live in the evaluation's folder: a bundle is never changed
                     once written)
    params.json      the run parameters (the training plan) that produced it
    history.json     per-epoch training history
    training-images.sha256
                     the first 16 hex digits of the sha256 of every image it was trained and
                     validated on, sorted, one per line (captcha bundles written since this file
                     exists): `evaluate` warns when the images it reads are among them

Both model kinds use this one format, one `save_bundle` and one `load_bundle`.

A bundle may come from elsewhere (a registry a colleague writes to), and a captcha vocabulary
becomes file names (`predict --review-dir` names each image by what the model read): a
vocabulary is checked when a bundle is loaded or saved, and one with an entry that could steer a
path is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import keras

from ocr_core.bundle.format import (
    BUNDLE_FILE,
    CAPTCHA,
    DIGITS,
    FORMAT_VERSION,
    MODEL_FILE,
    require_kind,
    upgrade,
)
from ocr_core.captcha.ctc import BLANK_INDEX, Vocabulary
from ocr_core.errors import ModelError
from ocr_core.files import atomic_path, read_json, sha256_file, utc_timestamp, write_json
from ocr_core.guards.characters import check_vocabulary
from ocr_core.training.batch_norm import with_keras_batch_norm
from ocr_core.version import __version__, code_version, library_versions

TRAINING_IMAGES_FILE = "training-images.sha256"
DIGEST_PREFIX = 16
"""Hex digits kept of each training image's sha256: 64 bits, so two different images share a
prefix with a chance of about 1 in 10^10 even between 100,000 images and 100,000 others."""


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle of either kind; `info` is its bundle.json in today's field names."""

    path: Path
    model: keras.Model
    info: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @property
    def recipe(self) -> str:
        return self.info["recipe"]

    @property
    def height(self) -> int:
        return self.info["input"]["height"]

    @property
    def width(self) -> int:
        return self.info["input"]["width"]

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """A captcha model's characters, in output order after the CTC blank (built once: its
        lookup layers are not free)."""
        require_kind(self.info, CAPTCHA, self.path)
        return Vocabulary(self.info["vocabulary"])

    @property
    def from_logits(self) -> bool:
        """Whether a digits model outputs logits (else probabilities)."""
        require_kind(self.info, DIGITS, self.path)
        return self.info["output"] == "logits"

    @property
    def training_data_sha256(self) -> str:
        """Content hash of the data it was trained on."""
        return self.info["training_data_sha256"]

    @property
    def training_step_key(self) -> str | None:
        """Key of the pipeline step that trained it, if a step did."""
        return self.info.get("training_step_key")

    @property
    def metrics(self) -> dict[str, Any]:
        return self._read("metrics.json")

    @property
    def params(self) -> dict[str, Any]:
        return self._read("params.json")

    def training_images(self) -> frozenset[str] | None:
        """sha256 prefixes of the images it was trained and validated on; None when the bundle
        does not record them (written before bundles did, or by hand)."""
        path = self.path / TRAINING_IMAGES_FILE
        return frozenset(path.read_text().split()) if path.is_file() else None

    def _read(self, name: str) -> dict[str, Any]:
        path = self.path / name
        return read_json(path) if path.exists() else {}


def captcha_fields(vocabulary: str, height: int, width: int) -> dict[str, Any]:
    """The bundle.json fields of a captcha (CTC) model reading `height` x `width` grey images."""
    return {"kind": CAPTCHA, "vocabulary": vocabulary, "blank_index": BLANK_INDEX,
            "input": {"height": height, "width": width, "channels": 1, "layout": "width-major"}}


def digits_fields(*, from_logits: bool, size: int, classes: Sequence[str]) -> dict[str, Any]:
    """The bundle.json fields of a digit classifier reading `size` x `size` images scaled to 0-1."""
    return {"kind": DIGITS, "classes": list(classes),
            "output": "logits" if from_logits else "probabilities",
            "input": {"height": size, "width": size, "channels": 1, "layout": "channels-last",
                      "scale": "0-1"}}


def save_bundle(
    path: str | Path,
    model: keras.Model,
    fields: dict[str, Any],
    *,
    recipe: str,
    training_data_sha256: str,
    params: dict[str, Any],
    history: dict[str, list[float]],
    metrics: dict[str, Any] | None = None,
    step_key: str | None = None,
    training_images: Iterable[str] | None = None,
) -> Path:
    """Write a complete bundle at `path` atomically: readers see all of it or none.

    Args:
        fields: the kind's fields: `captcha_fields(...)` or `digits_fields(...)`.
        training_data_sha256: content hash of the data it was trained on (a captcha split
            manifest's digest: labels and bytes; MNIST's files), so a copied bundle traces to it.
        step_key: the key of the training step that made it, when a pipeline step did.
        training_images: sha256 of every image it was trained and validated on, kept as
            `DIGEST_PREFIX`-digit prefixes in `TRAINING_IMAGES_FILE` (for the overlap check).

    Raises:
        ModelError: fields of an unknown kind, or a captcha vocabulary that could steer file names.
    """
    path = Path(path)
    info = upgrade({
        "format_version": FORMAT_VERSION, **fields, "recipe": recipe,
        "training_data_sha256": training_data_sha256,
        **({"training_step_key": step_key} if step_key else {}),
        "parameters": model.count_params(),
        "package_version": __version__, "code_version": code_version(),
        "library_versions": {name: version for name, version in library_versions().items()
                             if version is not None},
        "created": utc_timestamp(),
    }, path / BUNDLE_FILE)
    if info["kind"] == CAPTCHA:
        info["vocabulary"] = check_vocabulary(info["vocabulary"], path / BUNDLE_FILE)
    with atomic_path(path, is_dir=True) as tmp:
        # An uncompiled copy of Keras's own layers: no optimizer state, custom loss or training-only
        # layer, so it loads anywhere in safe mode. Its inputs are a list, as readers call it.
        plain = with_keras_batch_norm(model)
        keras.Model(plain.inputs, plain.outputs, name=model.name).save(tmp / MODEL_FILE)
        write_json(tmp / BUNDLE_FILE, info)
        write_json(tmp / "params.json", params)
        write_json(tmp / "history.json", history)
        write_json(tmp / "metrics.json", metrics or {})
        if training_images is not None:
            prefixes = sorted({digest[:DIGEST_PREFIX] for digest in training_images})
            (tmp / TRAINING_IMAGES_FILE).write_text("".join(f"{p}\n" for p in prefixes))
    return path


def seen_in_training(bundle: Bundle, paths: Iterable[str | Path]) -> list[Path] | None:
    """The `paths` whose bytes are among the images `bundle` was trained or validated on; None
    when the bundle does not record them (the check is not possible)."""
    trained = bundle.training_images()
    if trained is None:
        return None
    return [Path(p) for p in paths if sha256_file(p)[:DIGEST_PREFIX] in trained]


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


def describe_bundle(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """The bundle.json of a bundle folder (or its `model.keras`) in today's field names, checked,
    without loading the model.

    Args:
        kind: the kind the caller can use (`captcha`, `digits`); None takes either.

    Raises:
        ModelError: no bundle there, an unreadable or unknown description, another kind than
            `kind`, or a captcha vocabulary that could steer file names.
    """
    folder = bundle_dir(path)
    try:
        raw = read_json(folder / BUNDLE_FILE)
    except ValueError as error:
        raise ModelError(f"not a model bundle description: {folder / BUNDLE_FILE}: {error}") from None
    info = upgrade(raw, folder / BUNDLE_FILE)
    require_kind(info, kind, folder)
    if info["kind"] == CAPTCHA:
        info["vocabulary"] = check_vocabulary(info["vocabulary"], folder / BUNDLE_FILE)
        if info["blank_index"] != BLANK_INDEX:
            raise ModelError(f"{folder}: blank index {info['blank_index']} is not {BLANK_INDEX}")
    return info


def load_bundle(path: str | Path, kind: str | None = None) -> Bundle:
    """Load a bundle folder (or its `model.keras`) of any format this code has written.

    Args:
        kind: the kind the caller can use (`predict` needs `captcha`); None takes either.

    Raises:
        ModelError: no bundle there, another kind than `kind`, a vocabulary that could steer
            file names, or a model file that does not load.
    """
    info = describe_bundle(path, kind)
    folder = bundle_dir(path)
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as error:  # keras raises many types for a broken file
        raise ModelError(f"cannot load {folder / MODEL_FILE}: {error}") from error
    return Bundle(folder, model, info)
