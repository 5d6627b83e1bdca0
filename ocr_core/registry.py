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
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from ocr_core.errors import ConfigError, RegistryError
from ocr_core.files import read_json, remove_path, sha256_file, sha256_json, write_json
from ocr_core.layout import ResultsLayout

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
CHAMPION_FILE = "champion.json"
EVALUATION_SET_FILE = "evaluation-set.json"
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


def bundle_digest(folder: Path) -> str:
    """Content hash that identifies a bundle: its model file and its description."""
    from ocr_core.bundle import BUNDLE_FILE, MODEL_FILE

    return sha256_json({name: sha256_file(folder / name) for name in (MODEL_FILE, BUNDLE_FILE)})


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Registry:
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
        from ocr_core.bundle import BUNDLE_FILE, bundle_dir

        source = bundle_dir(bundle)
        with self.lock():
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".tmp-version-", dir=self.versions_dir))
            try:
                _snapshot(source, staging)
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
                    "registered": _now(),
                    "source": str(source),
                    "bundle": read_json(staging / BUNDLE_FILE),
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
        recorded = version.info.get("files")
        if recorded is None:  # registered before per-file digests: the bundle digest covers two
            if bundle_digest(version.path) != version.digest:
                raise RegistryError(f"registered {version.name} changed since registration: "
                                    f"{version.path / 'model.keras'} or "
                                    f"{version.path / 'bundle.json'} differs from the record")
            return version
        for name, digest in recorded.items():
            path = version.path / name
            if not path.is_file():
                raise RegistryError(f"registered {version.name} lost a file: {path}")
            if sha256_file(path) != digest:
                raise RegistryError(f"registered {version.name} changed since registration: "
                                    f"{path} differs from its recorded sha256 {digest[:12]}; "
                                    "restore it or register the model again")
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
                "version": version.name, "digest": version.digest, "since": _now(),
                "reason": reason})

    # The evaluation set

    def evaluation_set(self) -> dict[str, Any] | None:
        """The recorded held-out set: digest, image count and a description of where it is from."""
        path = self.path / EVALUATION_SET_FILE
        return read_json(path) if path.exists() else None

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
                            "recorded": _now()} | (recorded or {})
                if images is not None:
                    recorded["images"] = dict(sorted(images.items()))
                write_json(self.path / EVALUATION_SET_FILE, recorded)
            elif recorded["digest"] != digest:
                asked = {"digest": digest, "count": count, "description": description}
                raise ConfigError(
                    f"registry {self.path} compares models on {_describe(recorded)}; this run "
                    f"brings {_describe(asked)}. Use the recorded evaluation set, or another "
                    "results dir for a new registry."
                )
            return recorded

    def evaluation_images(self) -> dict[str, str]:
        """The evaluation set's images, file name by content hash (none before the first retrain).

        A set recorded before the registry kept its images is read from its folder, if any.
        """
        from ocr_core.dataset import list_pngs

        recorded = self.evaluation_set() or {}
        if "images" in recorded:
            return recorded["images"]
        folder = recorded.get("description", {}).get("folder")
        if folder is None or not Path(folder).is_dir():
            return {}
        return {sha256_file(path): path.name for path in list_pngs(folder)}

    # Decisions

    def record_decision(self, entry: dict[str, Any]) -> Path:
        """Append a promotion decision to the log; returns its file."""
        with self.lock():
            self.decisions_dir.mkdir(parents=True, exist_ok=True)
            numbers = [int(p.stem) for p in self.decisions_dir.glob("*.json") if p.stem.isdigit()]
            path = self.decisions_dir / f"{max(numbers, default=0) + 1:06d}.json"
            write_json(path, {"decided": _now()} | entry)
            return path

    def evaluation_set_uses(self, digest: str) -> int:
        """How many recorded decisions compared models on the evaluation set `digest`."""
        return sum(1 for d in self.decisions()
                   if (d.get("evaluation_set") or {}).get("digest") == digest
                   and d.get("challenger_scores") is not None)

    def decisions(self) -> list[dict[str, Any]]:
        """Every recorded decision, oldest first."""
        if not self.decisions_dir.is_dir():
            return []
        paths = sorted(p for p in self.decisions_dir.glob("*.json") if p.stem.isdigit())
        return [read_json(p) for p in paths]


def _describe(evaluation_set: dict[str, Any]) -> str:
    details = ", ".join(f"{k} {v}" for k, v in evaluation_set.get("description", {}).items())
    return f"{evaluation_set['count']} images ({details}; digest {evaluation_set['digest'][:12]})"


def _file_ids(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.iterdir() if p.is_file()}


def _snapshot(source: Path, target: Path, attempts: int = 5) -> None:
    """Copy the files of `source` into `target`, all from one version of `source`.

    Copies, not hard links: an edit of the cache's file must not change a registered version.
    A concurrent run may replace the bundle folder (same cache key) while it is read; the file
    identities before and after tell, and the copy is retried.
    """
    for _ in range(attempts):
        try:
            before = _file_ids(source)
            for name in before:
                shutil.copy2(source / name, target / name)
            if _file_ids(source) == before:
                return
        except FileNotFoundError:
            pass
        for path in target.iterdir():
            path.unlink()
    raise RegistryError(f"bundle {source} kept changing while it was being registered")
