"""The one held-out set a registry compares every champion and challenger on
(`evaluation-set.json`), recorded on first use (`ocr_core.registry`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocr_core.errors import ConfigError
from ocr_core.files import sha256_file, utc_timestamp
from ocr_core.storage import Root

EVALUATION_SET_FILE = "evaluation-set.json"


class EvaluationSetRecord:
    """The evaluation set part of `Registry`, which gives it `root`, `key()`, `read()`,
    `location` and `lock()`."""

    root: Root
    location: str
    lock: Callable[[], contextlib.AbstractContextManager[None]]
    key: Callable[[str], str]
    read: Callable[[str], Any]

    def evaluation_set(self) -> dict[str, Any] | None:
        """The recorded held-out set: digest, image count and a description of where it is from."""
        return self.read(EVALUATION_SET_FILE)

    def reserve_evaluation_set(
        self, digest: str, count: int, description: dict[str, Any],
        images: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Record the evaluation set on first use; later runs must bring the same one.

        `images` (file name by content hash) let an ingest refuse evaluation images.

        Raises:
            ConfigError: the registry already compares models on another set.
        """
        with self.lock():
            recorded = self.evaluation_set()
            if recorded is None or (recorded["digest"] == digest and images is not None
                                    and "images" not in recorded):
                recorded = {"digest": digest, "count": count, "description": description,
                            "recorded": utc_timestamp()} | (recorded or {})
                if images is not None:
                    recorded["images"] = dict(sorted(images.items()))
                self.root.write_json(self.key(EVALUATION_SET_FILE), recorded)
            elif recorded["digest"] != digest:
                asked = {"digest": digest, "count": count, "description": description}
                raise ConfigError(
                    f"registry {self.location} compares models on {_describe(recorded)}; this run "
                    f"brings {_describe(asked)}. Use the recorded evaluation set, or another "
                    "results dir for a new registry."
                )
            return recorded

    def evaluation_images(self) -> dict[str, str]:
        """The evaluation set's images, file name by content hash (none before the first retrain).

        A set recorded before the registry kept its images is read from its folder, if any.
        """
        from ocr_core.data.dataset import list_pngs

        recorded = self.evaluation_set() or {}
        if "images" in recorded:
            return recorded["images"]
        folder = recorded.get("description", {}).get("folder")
        if folder is None or not Path(folder).is_dir():
            return {}
        return {sha256_file(path): path.name for path in list_pngs(folder)}


def _describe(evaluation_set: dict[str, Any]) -> str:
    details = ", ".join(f"{k} {v}" for k, v in evaluation_set.get("description", {}).items())
    return f"{evaluation_set['count']} images ({details}; digest {evaluation_set['digest'][:12]})"
