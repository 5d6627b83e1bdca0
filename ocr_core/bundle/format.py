"""What a bundle's `bundle.json` says, for both model kinds, and how older bundles are read.

Format 2 (written today) has the same lineage fields for every kind:

    format_version        2
    kind                  "captcha" | "digits"
    recipe                the model's recipe (captcha) or name (digits: dense, simple_cnn, ...)
    input                 height, width, channels, layout (and scale for digits)
    training_data_sha256  content hash of the data it was trained on (a captcha split manifest,
                          MNIST's IDX files)
    training_step_key     the key of the pipeline step that trained it (absent for a direct call)
    package_version, code_version, library_versions (ocr_core.version.LIBRARIES), created

and the fields of its kind: captcha: `vocabulary`, `blank_index`; digits: `classes` and `output`
("logits" | "probabilities"). The plan and parameters are in params.json, the metrics in
metrics.json, beside it.

Older bundles are read by mapping their fields to these: format 1 captcha bundles (no kind,
`training_manifest_sha256`) and MNIST model folders (`"task": "mnist"`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocr_core.errors import ModelError

MODEL_FILE = "model.keras"
BUNDLE_FILE = "bundle.json"
FORMAT_VERSION = 2
CAPTCHA = "captcha"
DIGITS = "digits"
KINDS = (CAPTCHA, DIGITS)
DIGIT_OUTPUTS = ("logits", "probabilities")
_COMMON_FIELDS = ("recipe", "input", "training_data_sha256")
_KIND_FIELDS = {CAPTCHA: ("vocabulary", "blank_index"), DIGITS: ("classes", "output")}


def upgrade(info: Any, where: Path) -> dict[str, Any]:
    """`info` (a bundle.json's content, any format) with today's field names and its kind checked.

    `format_version` stays the one the file was written in; an older bundle has no library
    versions (an empty mapping).

    Raises:
        ModelError: `where` is not a bundle description, its format is newer than this code,
            or a field of its kind is missing.
    """
    if not isinstance(info, dict):
        raise ModelError(f"not a model bundle description: {where}")
    if "format_version" in info:
        version = info["format_version"]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelError(f"{where}: bundle format {version!r} is newer than this ocr-pipeline "
                             f"reads ({FORMAT_VERSION}); upgrade ocr-pipeline")
        described = dict(info)
    elif info.get("format") == 1:
        described = _from_format_1(info, where)
    else:
        raise ModelError(f"not a model bundle description (no format_version): {where}")
    kind = described.get("kind")
    if kind not in KINDS:
        raise ModelError(f"{where}: unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    missing = [name for name in (*_COMMON_FIELDS, *_KIND_FIELDS[kind]) if name not in described]
    if missing:
        raise ModelError(f"{where}: a {kind} bundle description lacks {', '.join(missing)}")
    if kind == DIGITS and described["output"] not in DIGIT_OUTPUTS:
        raise ModelError(f"{where}: output {described['output']!r} is not one of "
                         f"{', '.join(DIGIT_OUTPUTS)}")
    return described


def _from_format_1(info: dict[str, Any], where: Path) -> dict[str, Any]:
    """A format 1 description (captcha, or MNIST with `"task": "mnist"`) in today's names."""
    old = dict(info)
    del old["format"]
    task = old.pop("task", None)
    if task not in (None, "mnist"):
        raise ModelError(f"{where}: unknown model task {task!r} (known: mnist)")
    described: dict[str, Any] = {"format_version": 1, "kind": DIGITS if task else CAPTCHA}
    if "training_manifest_sha256" in old:
        described["training_data_sha256"] = old.pop("training_manifest_sha256")
    return described | {"library_versions": {}} | old


def require_kind(described: dict[str, Any], kind: str | None, folder: Path) -> None:
    """Refuse a bundle of another kind than the caller can use.

    Raises:
        ModelError: naming the folder, its kind and the kind needed.
    """
    if kind is not None and described["kind"] != kind:
        raise ModelError(f"{folder} holds a {described['kind']} model; this needs a {kind} model")
