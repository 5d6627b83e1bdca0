"""`ocr-pipeline export`: a bundle in the formats serving engines load (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import click

from flows.environment import import_tensorflow_quietly
from ocr_core.errors import ModelError
from ocr_core.export import FORMATS, check_format
from ocr_core.storage import local_copy


@click.command(name="export")
@click.option("--model", "model", required=True,
              help="Model bundle folder (or its model.keras), captcha or digits: a path or a "
              "store URL (s3://...).")
@click.option("--format", "format_name", type=click.Choice(FORMATS), default="saved_model",
              show_default=True, help="saved_model: a folder whose serving_default reads encoded "
              "images; onnx / litert: the network in one file, decoding facts in its metadata.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=1, show_default=True,
              help="Images per call of a LiteRT file (its batch size is fixed).")
@click.argument("out", type=click.Path(path_type=Path))
def export(model: str, format_name: str, batch_size: int, out: Path) -> None:
    """Write the model at --model as OUT: a SavedModel folder, an .onnx or a .tflite file.

    OUT must not exist; it appears whole or not at all.
    """
    check_format(format_name)  # a missing converter fails before TensorFlow loads
    import_tensorflow_quietly()
    from ocr_core.export import export_bundle

    written = export_bundle(local_copy(model, missing=ModelError), format_name, out,
                            batch_size=batch_size)
    click.echo(f"wrote {format_name} export of {model} to {written}")
