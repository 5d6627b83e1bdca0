"""Where a training's TensorBoard events go: beside its bundle, `<bundle folder>.tensorboard`
(named by the same step key, so `cache prune` collects it with the bundle)."""

from __future__ import annotations

from pathlib import Path


def tensorboard_folder(bundle: str | Path) -> Path:
    """The TensorBoard folder of the bundle at `bundle`."""
    bundle = Path(bundle)
    return bundle.with_name(bundle.name + ".tensorboard")
