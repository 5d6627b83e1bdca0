"""The cache under a results root, key by key: what each key holds, what refers to it, and the
safe removal of old keys (`ocr-pipeline cache ls` and `cache prune`).

A key (24 hex digits) names the places a step wrote: a folder or file under `data/<kind>/`,
`manifests/`, `datasets/`, `models/`, `evaluations/`, `plots/` or `work/` whose name ends in the
key (`models/crnn-<key>`, `plots/samples-<key>.png`), and Prefect's persisted result
`prefect-results/<key>`. Something refers to a key when its text holds it: a Prefect result (the
record a cache hit returns, read without unpickling) or a JSON file under `registry/`.

A key is last used when its newest file was written or a result referring to it was last read
(a cache hit reads it; file systems mounted `relatime` record that once a day, `noatime` ones
never, and then only writes count). This module reads results with `O_NOATIME`, so listing
does not make keys young.

Pruning keeps a key that is recent, that the registry refers to, or that a kept key's result
refers to, and never touches `registry/`. A step computing a key holds
`locks/<key>.lock` (`filelock.FileLock`); pruning takes that lock without waiting, skips the
key if it is held, and keeps it while it renames each place aside and deletes it. A result
pointing at a removed place is removed with it; a run that still finds one treats a hit whose
files are gone as a miss.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import filelock

from ocr_core.cache.locks import step_lock
from ocr_core.errors import ConfigError, DataError
from ocr_core.files import remove_path
from ocr_core.layout import ResultsLayout
from ocr_core.storage import open_root
from ocr_core.storage.roots import STAMPS_FOLDER

KEY_PATTERN = re.compile(r"(?<![0-9a-f])[0-9a-f]{24}(?![0-9a-f])")
_KEYED_NAME = re.compile(r"^(?P<prefix>.*?)-?(?P<key>[0-9a-f]{24})(?:\.[A-Za-z0-9]+)?$")
ASIDE_PREFIX = ".prune-"
NOT_KEYED = ("registry", "locks", "prefect-results")
"""Top-level folders of a results root that hold no keyed step outputs."""

STEPS = {
    "data/synthetic": "collect_captchas", "data/downloads": "download_archive",
    "data/extracted": "extract_archive", "data/mnist": "load_mnist",
    "manifests/split": "split_dataset", "manifests/validation": "validate_images",
    "datasets": "build_datasets", "models": "train_model", "models/mnist": "train_digit_model",
    "evaluations": "evaluate_model", "evaluations/mnist": "evaluate_digit_model",
    "plots/samples": "plot_samples", "plots/history": "plot_history",
    "plots/predictions": "plot_predictions", "plots/mnist": "plot_digits",
    "work/train_model": "train_model (resume state)",
}
"""Step of each place (folder and name prefix); other places are shown as they are."""

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, name: str = "--older-than") -> float:
    """Seconds in `text`, a number and a unit: 30m, 12h, 7d, 2w.

    Raises:
        ConfigError: `text` is not such a duration.
    """
    match = DURATION.match(text)
    if match is None:
        raise ConfigError(f"{name} {text!r} is not a duration: give a number and a unit "
                          "(s, m, h, d or w), e.g. 7d or 12h")
    return float(match[1]) * SECONDS[match[2]]


@dataclass
class KeyEntry:
    """One key of a results root: the places named by it and what refers to it."""

    key: str
    places: list[PurePath] = field(default_factory=list)  # paths; keys on a store
    size: int = 0  # bytes of its files
    unshared: int = 0  # bytes that removing it frees (files with no other hard link)
    written: float = 0.0  # newest modification time of its files
    read: float = 0.0  # last read of a Prefect result referring to it
    records: set[str] = field(default_factory=set)  # keys of the results referring to it
    registry: set[str] = field(default_factory=set)  # registry entries referring to it

    @property
    def last_used(self) -> float:
        return max(self.written, self.read)

    @property
    def step(self) -> str:
        """The step that wrote it, read from where its first place is."""
        kinds = [_step_of(place) for place in self.places
                 if place.parent.name != "prefect-results"]
        return kinds[0] if kinds else "prefect result"


def keyed_name(name: str) -> str | None:
    """The key a place's name ends in (`crnn-<key>`, `samples-<key>.png`), else None."""
    match = _KEYED_NAME.match(name)
    return match["key"] if match else None


def _step_of(place: PurePath) -> str:
    """`collect_captchas` for data/synthetic/<key>, `train_model` for models/crnn-<key>..."""
    match = _KEYED_NAME.match(place.name)
    prefix = match["prefix"] if match else ""
    folder = place.parent.name
    if place.parent.parent.name == "data":
        folder = f"data/{folder}"
    for candidate in (f"{folder}/{prefix}", f"{folder}/{prefix.split('-')[0]}", folder):
        if candidate in STEPS:
            return STEPS[candidate]
    return f"{folder}/{prefix}" if prefix else folder


def _usage(path: Path) -> tuple[int, int, float]:
    """Bytes, bytes with no other hard link, and the newest mtime of the files under `path`."""
    size = unshared = 0
    newest = 0.0
    pending = [path]
    while pending:
        current = pending.pop()
        try:
            stat = current.lstat()
        except FileNotFoundError:
            continue
        newest = max(newest, stat.st_mtime)
        if current.is_dir() and not current.is_symlink():
            pending += list(current.iterdir())
        else:
            size += stat.st_size
            unshared += stat.st_size if stat.st_nlink <= 1 else 0
    return size, unshared, newest


def _keyed_folders(root: Path) -> Iterator[Path]:
    """The folders holding keyed places: the top-level ones, `data/<kind>` and Prefect's results."""
    for top in sorted(root.iterdir()) if root.is_dir() else []:
        if top.is_dir() and not top.name.startswith(".") and top.name not in NOT_KEYED:
            yield top
            for child in sorted(top.iterdir()):
                if child.is_dir() and not child.name.startswith(".") \
                        and not _KEYED_NAME.match(child.name):
                    yield child  # data/<kind>
    if (results := ResultsLayout(root).prefect_results).is_dir():
        yield results


def _keyed_places(root: Path) -> Iterator[tuple[str, Path]]:
    """(key, path) of every step output under `root` whose name ends in its key."""
    results = ResultsLayout(root).prefect_results
    for folder in _keyed_folders(root):
        for place in sorted(folder.iterdir()):
            if folder == results and not (place.is_file() and KEY_PATTERN.fullmatch(place.name)):
                continue
            if not place.name.startswith(".") and (match := _KEYED_NAME.match(place.name)):
                yield match["key"], place


def _read_without_touching(path: Path) -> bytes:
    """The bytes of `path`, read without updating its access time where the OS allows."""
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:  # O_NOATIME needs the file's owner
        fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as file:
        return file.read()


def record_text(raw: bytes) -> str:
    """A Prefect result file's text with its base64 pickled value decoded (never unpickled)."""
    try:
        record = json.loads(raw)
        value = record.get("result") if isinstance(record, dict) else None
        decoded = base64.b64decode(value) if isinstance(value, str) else b""
    except (ValueError, binascii.Error):
        decoded = b""
    return (raw + b"\n" + decoded).decode("latin-1")


def scan(results_dir: str | Path) -> dict[str, KeyEntry]:
    """Every key under the results root (a folder or a store) with its places, size, last use
    and references."""
    root = open_root(results_dir)
    if not root.is_local:
        from ocr_core.cache.store_keys import scan_store

        return scan_store(root)
    results_dir = Path(root.url)
    layout = ResultsLayout(results_dir)
    if not results_dir.is_dir():
        raise DataError(f"results root {results_dir} does not exist")
    entries: dict[str, KeyEntry] = {}

    def entry(key: str) -> KeyEntry:
        return entries.setdefault(key, KeyEntry(key))

    references: dict[str, tuple[set[str], float]] = {}  # result key -> keys it holds, last read
    for key, place in _keyed_places(results_dir):
        entry(key).places.append(place)
        if place.parent == layout.prefect_results:
            held = set(KEY_PATTERN.findall(record_text(_read_without_touching(place))))
            references[key] = (held, place.stat().st_atime)
    for key, (held, read) in references.items():
        for other in held & entries.keys():
            entries[other].records.add(key)
            entries[other].read = max(entries[other].read, read)
    for path in sorted(layout.registry.rglob("*.json")) if layout.registry.is_dir() else []:
        label = path.parent.name if path.parent.parent.name == "versions" else path.stem
        for key in set(KEY_PATTERN.findall(path.read_text(errors="replace"))) & entries.keys():
            entries[key].registry.add(label)
    for item in entries.values():
        for place in item.places:
            size, unshared, newest = _usage(place)
            item.size += size
            item.unshared += unshared
            item.written = max(item.written, newest)
    return entries


@dataclass
class PrunePlan:
    """What a prune removes, and why each other old key stays."""

    remove: list[KeyEntry]
    kept: dict[str, str]  # key -> why an old key stays
    leftovers: list[Path]  # places an interrupted prune renamed aside


def plan_prune(results_dir: str | Path, older_than: float, now: float | None = None) -> PrunePlan:
    """The keys not used for `older_than` seconds that no registry entry, running step or kept
    key's result refers to."""
    entries = scan(results_dir)
    now = time.time() if now is None else now
    kept: dict[str, str] = {}
    for key, item in entries.items():
        if item.registry:
            kept[key] = f"registry {', '.join(sorted(item.registry))}"
        elif now - item.last_used < older_than:
            kept[key] = "recent"
        elif open_root(results_dir).lock(key).is_locked():
            kept[key] = "held by a running step"
    pending = list(kept)
    while pending:  # what a kept key's result points at stays with it
        key = pending.pop()
        for other, item in entries.items():
            if key in item.records and other not in kept:
                kept[other] = f"used by {key}"
                pending.append(other)
    remove = [item for key, item in entries.items() if key not in kept]
    old_kept = {key: why for key, why in kept.items() if why != "recent"}
    root = open_root(results_dir)
    leftovers = [path for folder in _keyed_folders(Path(root.url)) for path in folder.iterdir()
                 if path.name.startswith(ASIDE_PREFIX)] if root.is_local else []
    return PrunePlan(sorted(remove, key=lambda item: item.last_used), old_kept, leftovers)


def remove_key(results_dir: str | Path, item: KeyEntry) -> bool:
    """Remove a key's places: its Prefect result first, then each place renamed aside and
    deleted, all under the key's lock. False when a running step holds the lock."""
    root = open_root(results_dir)
    if not root.is_local:
        from ocr_core.cache.store_keys import remove_store_key

        return remove_store_key(root, item)
    results_dir = Path(root.url)
    for memo in (results_dir / STAMPS_FOLDER).glob(f"*{item.key}*.json"):
        memo.unlink(missing_ok=True)
    try:
        with step_lock(results_dir, item.key, timeout=0):
            for place in sorted(item.places, key=lambda p: p.parent.name != "prefect-results"):
                aside = place.with_name(f"{ASIDE_PREFIX}{uuid.uuid4().hex[:12]}-{place.name}")
                try:
                    place.rename(aside)
                except FileNotFoundError:
                    continue
                remove_path(aside)
    except filelock.Timeout:
        return False
    return True
