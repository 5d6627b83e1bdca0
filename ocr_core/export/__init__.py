"""A bundle in the formats serving engines load (docs/export.md).

    saved_model   a SavedModel folder whose `serving_default` reads encoded images
                  (`ocr_core.export.serving`): TF Serving, TFX, plain TensorFlow
    onnx          the network as one .onnx file (`ocr_core.export.network`): ONNX Runtime
    litert        the network as one .tflite file for a fixed batch size: LiteRT

Every export is written to a temporary sibling and renamed into place: a failed or killed export
leaves nothing at its destination. `export_serving_version` writes a SavedModel in TF Serving's
version layout (`<model folder>/<version number>/`), which promotion uses.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from ocr_core.errors import ConfigError
from ocr_core.files import atomic_path, remove_path

FORMATS = ("saved_model", "onnx", "litert")
EXTRA = "pip install 'ocr-pipeline[export]'"
CONVERTERS = {"saved_model": (), "onnx": ("tf2onnx", "onnx"), "litert": ()}
"""The modules each format needs beyond TensorFlow and Keras."""

logger = logging.getLogger(__name__)


def check_format(format_name: str) -> None:
    """Refuse an unknown format, or one whose converter is not installed (before any work).

    Raises:
        ConfigError: naming the format and what to install.
    """
    if format_name not in FORMATS:
        raise ConfigError(f"unknown export format {format_name!r}; choose from {', '.join(FORMATS)}")
    missing = [name for name in CONVERTERS[format_name] if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"the {format_name} export needs {' and '.join(missing)}, which are not "
                          f"installed: {EXTRA}")


def export_bundle(bundle_path: str | Path, format_name: str, out: str | Path, *,
                  batch_size: int = 1) -> Path:
    """Write the bundle at `bundle_path` as `format_name` at `out`, which must not exist yet.

    Args:
        bundle_path: a bundle folder or its model.keras (either kind).
        format_name: one of FORMATS.
        out: the SavedModel folder, or the .onnx / .tflite file, to create.
        batch_size: images per call of a LiteRT file (the other formats take any batch).

    Raises:
        ConfigError: an unknown format, a missing converter, `out` already there, or a LiteRT
            file name not ending in .tflite.
        ModelError: no readable bundle at `bundle_path`.
    """
    from ocr_core.bundle.folder import load_bundle

    check_format(format_name)
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists; remove it or choose another destination")
    if format_name == "litert" and out.suffix != ".tflite":
        raise ConfigError(f"a LiteRT file's name must end in .tflite: {out}")
    bundle = load_bundle(bundle_path)
    with atomic_path(out, is_dir=format_name == "saved_model") as tmp:
        if format_name == "saved_model":
            from ocr_core.export.serving import write_saved_model

            tmp.rmdir()  # the exporter creates the folder itself
            write_saved_model(bundle, tmp)
        elif format_name == "onnx":
            from ocr_core.export.network import write_onnx

            write_onnx(bundle, tmp)
        else:
            from ocr_core.export.network import write_litert

            litert = tmp.with_name(tmp.name + ".tflite")  # the converter wants the suffix
            try:
                write_litert(bundle, litert, batch_size)
                litert.replace(tmp)
            finally:
                remove_path(litert)
    logger.info("exported %s as %s to %s", bundle.path, format_name, out)
    return out


def export_serving_version(bundle_path: str | Path, model_folder: str | Path, number: int) -> Path:
    """Write the bundle as SavedModel `<model_folder>/<number>/`, TF Serving's version layout, and
    then remove the other versions there, so a server watching the folder serves this one.

    The version is written under a temporary name (`.tmp-...`, which TF Serving ignores) and
    renamed, so a watching server never sees half of it; if anything fails, the folder is as
    it was and the previous version keeps serving. A complete version already there is kept.

    Raises:
        ModelError: no readable bundle at `bundle_path`.
        OSError: the folder cannot be written.
    """
    from ocr_core.bundle.folder import load_bundle
    from ocr_core.export.serving import write_saved_model

    model_folder = Path(model_folder)
    target = model_folder / str(number)
    if not (target / "saved_model.pb").is_file():
        bundle = load_bundle(bundle_path)
        with atomic_path(target, is_dir=True) as tmp:
            tmp.rmdir()
            write_saved_model(bundle, tmp)
    for other in model_folder.iterdir():
        if other.name.isdigit() and other.name != str(number):
            remove_path(other)
    return target
