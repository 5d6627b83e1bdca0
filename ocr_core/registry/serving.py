"""Promotion: the champion pointer moves, and the new champion's SavedModel goes where serving
engines watch, in TF Serving's version layout:

    registry/serving/<recipe>/<version number>/saved_model.pb ...

The folder of a recipe holds only its latest champion, so TF Serving (which serves the highest
version number it finds) follows promotions and rollbacks alike. The export is written under a
temporary name and renamed (`ocr_core.export.export_serving_version`); a failed export leaves
the previous version serving, and the promotion's record says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ocr_core.registry import ModelVersion, Registry

SERVING_DIR = "serving"
logger = logging.getLogger(__name__)


def serving_folder(registry: Registry, version: ModelVersion) -> Path:
    """`<registry>/serving/<recipe>`: the folder a serving engine watches for this model."""
    return registry.path / SERVING_DIR / version.info["bundle"]["recipe"]


def promote(registry: Registry, version: ModelVersion, reason: str) -> dict[str, Any]:
    """Export `version` for serving, then make it the champion; returns what serves now.

    Hold the registry's lock around it (the caller decides under that lock). The returned
    record goes into the promotion decision: `exported`, the serving `path`, and on failure
    the `error` and the `serving` versions left in place.
    """
    from ocr_core.export import export_serving_version

    folder = serving_folder(registry, version)
    try:
        path = export_serving_version(version.path, folder, version.number)
        serving: dict[str, Any] = {"exported": True, "path": str(path), "serving": version.name}
    except Exception as error:  # any failure: the previous version keeps serving
        left = sorted(p.name for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
        serving = {"exported": False, "error": f"{type(error).__name__}: {error}"[:500],
                   "serving": [f"v{number}" for number in left]}
        logger.warning("%s is the champion, but its SavedModel export failed (%s); %s still "
                       "serve(s) from %s", version.name, serving["error"],
                       ", ".join(serving["serving"]) or "nothing", folder)
    registry.set_champion(version, reason)
    return serving
