"""Model registry: numbered versions of model bundles, a champion pointer and the decisions that moved it.

    registry/
      .lock                  locked (filelock) by whoever changes the registry
      evaluation-set.json    the one held-out set every champion/challenger comparison uses
      champion.json          {"version": "v3", ...}: the model `predict` uses; replaced atomically
      versions/v3/           a bundle (files copied) + split.json + version.json + scores.json
      decisions/000007.json  one file per promotion decision

A version's files are copies, never links into the cache, and version.json records the sha256 of
each: `verified` refuses a version whose files changed since, naming the file.

Writers hold an exclusive `filelock.FileLock` on `.lock` (an OS lock, released when the process
dies), briefly: never while a model is scored. Every file is written whole and renamed into
place, so readers never lock and never see half a file. A version is registered once per bundle
content: registering the same model.keras again returns the existing version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from ocr_core.errors import RegistryError
from ocr_core.files import read_json, remove_path, sha256_file, utc_timestamp, write_json
from ocr_core.layout import ResultsLayout
from ocr_core.registry.evaluation_set import EvaluationSetRecord
from ocr_core.registry.files import bundle_digest, check_files, snapshot

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
CHAMPION_FILE = "champion.json"
VERSION_FILE = "version.json"
SCORES_FILE = "scores.json"
SPLIT_FILE = "split.json"
_VERSION_NAME = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: a bundle folder plus what the registry knows about it."""

    name: str
    path: Path
    info: dict[str, Any]

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
        path = self.path / SCORES_FILE
        return read_json(path) if path.exists() else {}


def version_number(reference: str | int) -> int:
    """3 for "v3", "3" or 3.

    Raises:
        RegistryError: `reference` names no version.
    """
    text = str(reference).strip()
    match = _VERSION_NAME.match(text) or re.match(r"^(\d+)$", text)
    if not match or int(match.group(1)) < 1:
        raise RegistryError(f"not a model version: {reference!r} (expected v1, v2, ... or champion)")
    return int(match.group(1))


class Registry(EvaluationSetRecord):
    """The registry folder of one results root. An instance is safe to share: its lock is
    re-entrant within a thread and exclusive across threads and processes."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = 600.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        # thread_local: each thread holds the lock on its own (exclusive across threads);
        # preserve_lock_file: deleting a lock file others may have opened would split the lock.
        self._file_lock = filelock.FileLock(self.path / LOCK_FILE, thread_local=True,
                                            preserve_lock_file=True)

    @classmethod
    def of(cls, results_dir: str | os.PathLike[str], **kwargs: Any) -> Registry:
        """The registry under a results root."""
        return cls(ResultsLayout(Path(results_dir)).registry, **kwargs)

    @property
    def versions_dir(self) -> Path:
        return self.path / "versions"

    @property
    def decisions_dir(self) -> Path:
        return self.path / "decisions"

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the registry's exclusive lock (re-entrant in this thread).

        Raises:
            RegistryError: another run held it for longer than `timeout` seconds.
        """
        timeout = self.lock_timeout if timeout is None else timeout
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._file_lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise RegistryError(
                f"registry {self.path} stayed locked by another run for {timeout:.0f} s"
            ) from None
        try:
            yield
        finally:
            self._file_lock.release()

    # Versions

    def versions(self) -> list[ModelVersion]:
        """Registered versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        found = []
        for folder in self.versions_dir.iterdir():
            if _VERSION_NAME.match(folder.name) and (folder / VERSION_FILE).is_file():
                found.append(ModelVersion(folder.name, folder, read_json(folder / VERSION_FILE)))
        return sorted(found, key=lambda version: version.number)

    def version(self, reference: str | int) -> ModelVersion:
        """A version by name ("v3", "3") or "champion".

        Raises:
            RegistryError: no such version, or no champion yet.
        """
        if str(reference) == "champion":
            champion = self.champion()
            if champion is None:
                raise RegistryError(f"registry {self.path} has no champion yet")
            return champion
        name = f"v{version_number(reference)}"
        folder = self.versions_dir / name
        if not (folder / VERSION_FILE).is_file():
            known = ", ".join(v.name for v in self.versions()) or "none"
            raise RegistryError(f"no version {name} in registry {self.path} (versions: {known})")
        return ModelVersion(name, folder, read_json(folder / VERSION_FILE))

    def register(
        self, bundle: str | os.PathLike[str], *, training_data: dict[str, Any],
        params: dict[str, Any], metrics: dict[str, Any] | None = None,
        split: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Copy a bundle in as the next version; the same bundle content returns its version.

        Args:
            bundle: a bundle folder (or its model.keras).
            training_data: what the model was trained on (source, images, seed or folder, manifest).
            params: the run parameters that produced it.
            metrics: its metrics (validation, test split), read from where its evaluation
                wrote them; default: the bundle's own metrics.json (validation only).
            split: which images (by content hash) were in each split, kept as split.json so
                the next retrain can say what joined each split.
        """
        from ocr_core.bundle.folder import bundle_dir, describe_bundle

        describe_bundle(bundle, kind="captcha")
        source = bundle_dir(bundle)
        with self.lock():
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".tmp-version-", dir=self.versions_dir))
            try:
                snapshot(source, staging)
                digest = bundle_digest(staging)
                for existing in self.versions():
                    if existing.digest == digest:
                        logger.info("%s is already registered as %s", source, existing.name)
                        return existing
                name = f"v{max((v.number for v in self.versions()), default=0) + 1}"
                if split is not None:
                    write_json(staging / SPLIT_FILE, split)
                bundle_metrics = staging / "metrics.json"
                write_json(staging / VERSION_FILE, {
                    "version": name,
                    "digest": digest,
                    "files": {p.name: sha256_file(p) for p in sorted(staging.iterdir())},
                    "registered": utc_timestamp(),
                    "source": str(source),
                    "bundle": describe_bundle(staging),
                    "training_data": training_data,
                    "params": params,
                    "metrics": metrics if metrics is not None else (
                        read_json(bundle_metrics) if bundle_metrics.exists() else {}),
                })
                os.rename(staging, self.versions_dir / name)
            finally:
                remove_path(staging)
            logger.info("registered %s as %s", source, name)
            return self.version(name)

    def verified(self, version: ModelVersion) -> ModelVersion:
        """`version`, after checking its files against the digests recorded at registration.

        Raises:
            RegistryError: a file is missing or its content changed; the message names it.
        """
        check_files(version.name, version.path, version.info)
        return version

    def split_of(self, version: ModelVersion) -> dict[str, Any] | None:
        """The split record a version was registered with, or None."""
        path = version.path / SPLIT_FILE
        return read_json(path) if path.exists() else None

    def record_scores(self, version: ModelVersion, key: str, scores: dict[str, Any]) -> None:
        """Remember a version's scores on an evaluation set (`key` names set and decoding)."""
        with self.lock():
            write_json(version.path / SCORES_FILE, version.scores | {key: scores})

    # Champion

    def champion(self) -> ModelVersion | None:
        """The version `predict` uses, or None before the first promotion."""
        pointer = self.path / CHAMPION_FILE
        if not pointer.exists():
            return None
        return self.version(read_json(pointer)["version"])

    def set_champion(self, version: ModelVersion, reason: str) -> None:
        """Point the champion at `version`, atomically (a reader sees the old or the new one)."""
        with self.lock():
            write_json(self.path / CHAMPION_FILE, {
                "version": version.name, "digest": version.digest, "since": utc_timestamp(),
                "reason": reason})

    # Decisions

    def record_decision(self, entry: dict[str, Any]) -> Path:
        """Append a promotion decision to the log; returns its file."""
        with self.lock():
            self.decisions_dir.mkdir(parents=True, exist_ok=True)
            numbers = [int(p.stem) for p in self.decisions_dir.glob("*.json") if p.stem.isdigit()]
            path = self.decisions_dir / f"{max(numbers, default=0) + 1:06d}.json"
            write_json(path, {"decided": utc_timestamp()} | entry)
            return path

    def evaluation_set_uses(self, digest: str) -> int:
        """How many recorded decisions scored a challenger on the evaluation set `digest`."""
        return sum(1 for d in self.decisions()
                   if (d.get("evaluation_set") or {}).get("digest") == digest
                   and d.get("challenger_scores") is not None)

    def decisions(self) -> list[dict[str, Any]]:
        """Every recorded decision, oldest first."""
        if not self.decisions_dir.is_dir():
            return []
        paths = sorted(p for p in self.decisions_dir.glob("*.json") if p.stem.isdigit())
        return [read_json(p) for p in paths]
