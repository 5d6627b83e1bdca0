"""Where things live under the one results root (a folder or a store prefix, `ocr_core.storage`).
Deleting the root is a full reset."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RESULTS_ENV = "OCR_PIPELINE_RESULTS"
DEFAULT_RESULTS_DIR = "ocr-results"


def default_results_dir() -> str:
    """`$OCR_PIPELINE_RESULTS`, else `./ocr-results`: an absolute path, or a store URL."""
    from ocr_core.storage import root_url

    return root_url(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS_DIR)


@dataclass(frozen=True)
class ResultsLayout:
    """Folders of a results root; step outputs sit in sub-folders named by their content key."""

    root: Path

    @property
    def data(self) -> Path:
        """Generated, downloaded and extracted images."""
        return self.root / "data"

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def datasets(self) -> Path:
        """Preprocessed tf.data snapshots."""
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        """Model bundles, one folder per training."""
        return self.root / "models"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def evaluations(self) -> Path:
        return self.root / "evaluations"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def work(self) -> Path:
        """Unfinished steps' state (a training's last epoch), kept so a killed run resumes."""
        return self.root / "work"

    @property
    def locks(self) -> Path:
        """One lock file per step key (`ocr_core.cache.locks`): who is computing that key now."""
        return self.root / "locks"

    @property
    def prefect_results(self) -> Path:
        """Prefect's persisted task results (PREFECT_LOCAL_STORAGE_PATH)."""
        return self.root / "prefect-results"
