"""Model registry: numbered versions of model bundles, a champion pointer and the decisions that moved it.

    registry/                on the results root (a folder or a store, `ocr_core.storage`)
      evaluation-set.json    the one held-out set every champion/challenger comparison uses
      champion.json          {"version": "v3", ...}: the model `predict` uses
      versions/v3/           a bundle (files copied) + split.json + version.json + scores.json
      decisions/000007.json  one file per promotion decision

A version's files are copies, never links into the cache, and version.json records the sha256 of
each: `verified` refuses a version whose files changed since, naming the file. version.json is
written last, so a version without it is not one.

Writers hold the root's lock `registry` (`Root.lock`: a file lock, or a lease on a store; free
again when its holder dies), briefly: never while a model is scored. Every file is written
whole, so readers never lock and never see half a file. The champion pointer moves by a
conditional write (only if it is still the version the mover read), and a decision takes the
next number only if no one took it: two promotions at once cannot both win. A version is
registered once per bundle content: registering the same model.keras again returns it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from ocr_core.errors import RegistryError
from ocr_core.files import read_json, remove_path, sha256_file, utc_timestamp, write_json
from ocr_core.registry.evaluation_set import EvaluationSetRecord
from ocr_core.registry.files import bundle_digest, check_files, snapshot
from ocr_core.registry.versions import (
    CHAMPION_FILE,
    REGISTRY,
    SCORES_FILE,
    SPLIT_FILE,
    VERSION_FILE,
    VERSION_NAME,
    ModelVersion,
    version_number,
)
from ocr_core.storage import Root, open_root
from ocr_core.storage.errors import LockTimeout, StorageConflict

logger = logging.getLogger(__name__)

LOCK_NAME = "registry"

__all__ = ["ANY_CHAMPION", "CHAMPION_FILE", "REGISTRY", "SCORES_FILE", "SPLIT_FILE", "VERSION_FILE",
           "ModelVersion", "Registry", "bundle_digest", "version_number"]
ANY_CHAMPION = object()
"""`set_champion`'s default: replace whichever version is the champion now."""


class Registry(EvaluationSetRecord):
    """The registry of one results root. An instance is safe to share: its lock is re-entrant
    within a thread and exclusive across threads, processes and machines."""

    def __init__(self, root: Root, lock_timeout: float = 600.0) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self._local = threading.local()

    @classmethod
    def of(cls, results_dir: str | os.PathLike[str], **kwargs: Any) -> Registry:
        """The registry under a results root (a path or URL)."""
        return cls(open_root(results_dir), **kwargs)

    @property
    def location(self) -> str:
        """Where the registry is (a path or URL), for people."""
        return self.root.location(REGISTRY)

    def key(self, name: str) -> str:
        return f"{REGISTRY}/{name}"

    def read(self, name: str) -> Any | None:
        """A JSON file of the registry, or None when there is none."""
        try:
            return self.root.read_json(self.key(name))
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the registry's exclusive lock (re-entrant in this thread).

        Raises:
            RegistryError: another run held it for longer than `timeout` seconds.
        """
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        timeout = self.lock_timeout if timeout is None else timeout
        lock = self.root.lock(LOCK_NAME)
        try:
            lock.acquire(timeout)
        except LockTimeout:
            raise RegistryError(
                f"registry {self.location} stayed locked by another run for {timeout:.0f} s"
            ) from None
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            lock.release()

    # Versions

    def versions(self) -> list[ModelVersion]:
        """Registered versions, oldest first."""
        found = []
        for name in self.root.listdir(self.key("versions")):
            if VERSION_NAME.match(name) and (info := self.read(f"versions/{name}/{VERSION_FILE}")):
                found.append(ModelVersion(name, self.root, info))
        return sorted(found, key=lambda version: version.number)

    def version(self, reference: str | int) -> ModelVersion:
        """A version by name ("v3", "3") or "champion".

        Raises:
            RegistryError: no such version, or no champion yet.
        """
        if str(reference) == "champion":
            champion = self.champion()
            if champion is None:
                raise RegistryError(f"registry {self.location} has no champion yet")
            return champion
        name = f"v{version_number(reference)}"
        info = self.read(f"versions/{name}/{VERSION_FILE}")
        if info is None:
            known = ", ".join(v.name for v in self.versions()) or "none"
            raise RegistryError(f"no version {name} in registry {self.location} (versions: {known})")
        return ModelVersion(name, self.root, info)

    def register(
        self, bundle: str | os.PathLike[str], *, training_data: dict[str, Any],
        params: dict[str, Any], metrics: dict[str, Any] | None = None,
        split: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Copy a bundle in as the next version; the same bundle content returns its version.

        Args:
            bundle: a local bundle folder (or its model.keras).
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
        staging = self.root.local / REGISTRY / "versions" / f".tmp-version-{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        try:
            snapshot(source, staging)
            digest = bundle_digest(staging)
            with self.lock():
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
                key = self.key(f"versions/{name}")
                remove_path(self.root.local / key)  # a stale local copy of a store's version
                os.rename(staging, self.root.local / key)
                self.root.push(key)  # version.json last: a version is whole once it is listed
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
        return self.read(f"versions/{version.name}/{SPLIT_FILE}")

    def record_scores(self, version: ModelVersion, key: str, scores: dict[str, Any]) -> None:
        """Remember a version's scores on an evaluation set (`key` names set and decoding)."""
        with self.lock():
            self.root.write_json(f"{version.key}/{SCORES_FILE}", version.scores | {key: scores})

    # Champion

    def champion(self) -> ModelVersion | None:
        """The version `predict` uses, or None before the first promotion."""
        pointer = self.read(CHAMPION_FILE)
        return None if pointer is None else self.version(pointer["version"])

    def set_champion(self, version: ModelVersion, reason: str,
                     replacing: ModelVersion | None | object = ANY_CHAMPION) -> None:
        """Point the champion at `version`, if the champion is still `replacing` (None: no
        champion yet; default: whichever it is now). The pointer is replaced by a conditional
        write, so of two moves from the same champion one wins.

        Raises:
            RegistryError: the champion moved since `replacing` was read.
        """
        key = self.key(CHAMPION_FILE)
        pointer = {"version": version.name, "digest": version.digest, "since": utc_timestamp(),
                   "reason": reason}
        with self.lock():
            try:
                current, tag = self.root.read_versioned(key)
            except FileNotFoundError:
                current, tag = None, None
            now = None if current is None else json.loads(current)["version"]
            if replacing is not ANY_CHAMPION and now != (replacing and replacing.name):
                raise RegistryError(f"the champion of {self.location} moved to {now} meanwhile")
            try:
                self.root.write_json(key, pointer, **({"create_only": True} if tag is None
                                                      else {"if_version": tag}))
            except (StorageConflict, FileExistsError):
                raise RegistryError(f"the champion of {self.location} moved meanwhile") from None

    # Decisions

    def record_decision(self, entry: dict[str, Any]) -> str:
        """Append a promotion decision to the log, under the next free number; returns its key."""
        with self.lock():
            numbers = [int(name[:-5]) for name in self.root.listdir(self.key("decisions"))
                       if name.endswith(".json") and name[:-5].isdigit()]
            number = max(numbers, default=0) + 1
            while True:
                key = self.key(f"decisions/{number:06d}.json")
                try:
                    self.root.write_json(key, {"decided": utc_timestamp()} | entry,
                                         create_only=True)
                    return key
                except FileExistsError:
                    number += 1

    def evaluation_set_uses(self, digest: str) -> int:
        """How many recorded decisions scored a challenger on the evaluation set `digest`."""
        return sum(1 for d in self.decisions()
                   if (d.get("evaluation_set") or {}).get("digest") == digest
                   and d.get("challenger_scores") is not None)

    def decisions(self) -> list[dict[str, Any]]:
        """Every recorded decision, oldest first."""
        names = sorted(name for name in self.root.listdir(self.key("decisions"))
                       if name.endswith(".json") and name[:-5].isdigit())
        return [self.root.read_json(self.key(f"decisions/{name}")) for name in names]
