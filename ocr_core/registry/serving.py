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
from typing import Any

from ocr_core.registry import ANY_CHAMPION, ModelVersion, Registry

SERVING_DIR = "serving"
logger = logging.getLogger(__name__)


def serving_key(version: ModelVersion) -> str:
    """`registry/serving/<recipe>`: the folder a serving engine watches for this model."""
    return f"registry/{SERVING_DIR}/{version.info['bundle']['recipe']}"


def promote(registry: Registry, version: ModelVersion, reason: str,
            replacing: ModelVersion | None | object = ANY_CHAMPION) -> dict[str, Any]:
    """Export `version` for serving, then make it the champion (if the champion is still
    `replacing`, as `Registry.set_champion`); returns what serves now.

    Hold the registry's lock around it (the caller decides under that lock). On a store the
    export is written here and uploaded with `saved_model.pb` last, then the other versions are
    removed. The returned record goes into the promotion decision: `exported`, the serving
    `path`, and on failure the `error` and the `serving` versions left in place.
    """
    from ocr_core.export import export_serving_version

    root, key = registry.root, serving_key(version)
    folder = root.local / key
    try:
        export_serving_version(version.path, folder, version.number)
        root.push(f"{key}/{version.number}")
        for other in root.listdir(key):
            if other.isdigit() and other != str(version.number):
                root.remove(f"{key}/{other}")
        serving: dict[str, Any] = {"exported": True, "serving": version.name,
                                   "path": root.location(f"{key}/{version.number}")}
    except Exception as error:  # any failure: the previous version keeps serving
        left = sorted(name for name in root.listdir(key) if name.isdigit())
        serving = {"exported": False, "error": f"{type(error).__name__}: {error}"[:500],
                   "serving": [f"v{number}" for number in left]}
        logger.warning("%s is the champion, but its SavedModel export failed (%s); %s still "
                       "serve(s) from %s", version.name, serving["error"],
                       ", ".join(serving["serving"]) or "nothing", root.location(key))
    registry.set_champion(version, reason, replacing=replacing)
    return serving
