"""A registered version: its name, where its files are on the root, what the registry knows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocr_core.errors import RegistryError
from ocr_core.storage import Root

REGISTRY = "registry"
CHAMPION_FILE = "champion.json"
VERSION_FILE = "version.json"
SCORES_FILE = "scores.json"
SPLIT_FILE = "split.json"
VERSION_NAME = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: a bundle folder on the root plus what the registry knows about it."""

    name: str
    root: Root
    info: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{REGISTRY}/versions/{self.name}"

    @property
    def location(self) -> str:
        """Where the version's files are (a path or URL), for people."""
        return self.root.location(self.key)

    @property
    def path(self) -> Path:
        """A local folder with the version's files (copied from a store when need be)."""
        return self.root.pull(self.key)

    @property
    def number(self) -> int:
        return version_number(self.name)

    @property
    def digest(self) -> str:
        """Content hash of the bundle's model.keras and bundle.json."""
        return self.info["digest"]

    @property
    def scores(self) -> dict[str, dict[str, Any]]:
        """Scores on evaluation sets, by evaluation key."""
        try:
            return self.root.read_json(f"{self.key}/{SCORES_FILE}")
        except FileNotFoundError:
            return {}


def version_number(reference: str | int) -> int:
    """3 for "v3", "3" or 3.

    Raises:
        RegistryError: `reference` names no version.
    """
    text = str(reference).strip()
    match = VERSION_NAME.match(text) or re.match(r"^(\d+)$", text)
    if not match or int(match.group(1)) < 1:
        raise RegistryError(f"not a model version: {reference!r} (expected v1, v2, ... or champion)")
    return int(match.group(1))
