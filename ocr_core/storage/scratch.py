"""The scratch cache: local copies of a store's keys, bounded in size, evicted least recently
used first.

    <scratch>/mirrors/<root id>/<key>      a key's files as the store had them
    <scratch>/stamps/<root id>/<key>.json  the stamp they were pulled or pushed at, and their size

The folder is `$OCR_PIPELINE_SCRATCH`, else `$XDG_CACHE_HOME/ocr-pipeline` (`~/.cache/...`); its
size limit `$OCR_PIPELINE_SCRATCH_MAX_GIB` (default 20). A key is named by its content (a step
key), so a copy is either right or refreshed from its stamp; a key in use (`pinned`) is never
evicted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ocr_core.errors import ConfigError
from ocr_core.files import atomic_path, remove_path

SCRATCH_ENV = "OCR_PIPELINE_SCRATCH"
LIMIT_ENV = "OCR_PIPELINE_SCRATCH_MAX_GIB"
DEFAULT_LIMIT_GIB = 20.0
COMMIT_MARKERS = frozenset({"bundle.json", "version.json", "datasets.json", "saved_model.pb"})
"""Files that tell a reader a folder is complete: pushed after every other file."""


def scratch_dir() -> Path:
    """The scratch cache's folder."""
    configured = os.environ.get(SCRATCH_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser().absolute() / "ocr-pipeline"


def work_dir() -> Path:
    """A folder of the scratch cache for temporary files (created if need be)."""
    folder = scratch_dir() / "work"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def limit_bytes() -> int:
    """The size the scratch cache is trimmed to."""
    text = os.environ.get(LIMIT_ENV, str(DEFAULT_LIMIT_GIB))
    try:
        gib = float(text)
    except ValueError:
        gib = -1.0
    if gib <= 0:
        raise ConfigError(f"{LIMIT_ENV}={text!r} is not a positive number of GiB")
    return int(gib * 2**30)


def root_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def mirror_of(url: str) -> Path:
    """Where the keys of the store root `url` are copied on this machine."""
    return scratch_dir() / "mirrors" / root_id(url)


def _stamp_file(url: str, key: str) -> Path:
    return scratch_dir() / "stamps" / root_id(url) / f"{key.replace('/', '%2F') or '%root'}.json"


def recorded_stamp(url: str, key: str) -> str | None:
    """The stamp the local copy of `key` was pulled or pushed at, if there is one."""
    try:
        return json.loads(_stamp_file(url, key).read_text())["stamp"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def record_stamp(url: str, key: str, stamp: str | None, size: int,
                 local_versions: dict[str, tuple[int, str]]) -> None:
    """Remember that the local copy of `key` (whose files are `local_versions`) is the root's
    `stamp`."""
    path = _stamp_file(url, key)
    entry = {"url": url, "key": key, "stamp": stamp, "bytes": size,
             "local": {name: list(value) for name, value in local_versions.items()}}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(entry))


def recorded_local_versions(url: str, key: str) -> dict[str, tuple[int, str]] | None:
    """The local files the copy of `key` had when it was last pulled or pushed."""
    try:
        entry = json.loads(_stamp_file(url, key).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return {name: tuple(value) for name, value in entry.get("local", {}).items()}


def forget(url: str, key: str) -> None:
    """Forget the local copy of `key` (it was removed)."""
    _stamp_file(url, key).unlink(missing_ok=True)


def touch(url: str, key: str) -> None:
    """Mark the copy of `key` as just used (eviction goes by last use)."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(_stamp_file(url, key))


@contextlib.contextmanager
def pinned(url: str, keys: list[str]) -> Iterator[None]:
    """Hold a shared lock on the copies of `keys` (eviction takes it exclusively, or skips)."""
    with contextlib.ExitStack() as stack:
        for key in keys:
            path = _stamp_file(url, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(open(path, "a"))
            fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def trim(limit: int | None = None) -> int:
    """Evict the least recently used copies not in use until the cache fits `limit` bytes
    (default `limit_bytes()`); returns the bytes freed."""
    limit = limit_bytes() if limit is None else limit
    entries = []
    for path in (scratch_dir() / "stamps").glob("*/*.json"):
        try:
            entries.append((path.stat().st_mtime, path, json.loads(path.read_text())))
        except (FileNotFoundError, ValueError):
            continue
    total = sum(entry.get("bytes", 0) for _, _, entry in entries)
    freed = 0
    for _, path, entry in sorted(entries, key=lambda item: item[0]):
        if total - freed <= limit:
            break
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # in use
                continue
            key = entry.get("key", "")
            remove_path(mirror_of(entry["url"]) / key if key else mirror_of(entry["url"]))
            path.unlink(missing_ok=True)
            freed += entry.get("bytes", 0)
    return freed

