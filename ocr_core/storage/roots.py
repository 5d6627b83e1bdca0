"""A root: a folder named by a URL, read and written by keys relative to it.

`LocalRoot` is a folder on this machine, used in place. `StoreRoot` is a prefix on an object
store (any fsspec protocol: s3 through s3fs, gs through gcsfs): its keys are mirrored under the
scratch cache (`ocr_core.storage.scratch`), pulled before a step reads them and pushed after it
wrote them. Credentials and endpoints come from the protocol's standard environment
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL_S3`, ...), never from flags.

A key's *stamp* digests the names, sizes and versions (S3's ETag, a local file's size and
modification time) of its files: the stamp recorded when a step wrote a key tells a later
reader whether the bytes are still those (`ocr_core.storage.stamps`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ocr_core.errors import ConfigError, DataError, OcrPipelineError
from ocr_core.files import atomic_path, move_aside, remove_path
from ocr_core.storage import scratch
from ocr_core.storage.errors import StorageConflict, translated
from ocr_core.storage.stamps import FileVersions, content_versions, local_versions, stamp_of

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
STAMPS_FOLDER = ".stamps"
"""Where a local root remembers its files' digests (`ocr_core.storage.stamps.content_versions`)."""
STORE_SCHEMES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
"""Object-store protocols, with the package that provides each."""


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether `location` is written as a URL (`scheme://...`) rather than a path."""
    return _URL.match(str(location)) is not None


def root_url(location: str | os.PathLike[str]) -> str:
    """The canonical form of a root: an absolute local path, or `scheme://bucket/prefix`.

    Raises:
        ConfigError: an unknown scheme, or a store URL without a bucket.
    """
    text = os.fspath(location)
    match = _URL.match(text)
    if match is None:
        return str(Path(text).expanduser().absolute())
    scheme = match["scheme"].lower()
    if scheme == "file":
        return str(Path(match["rest"] or "/").absolute())
    if scheme not in STORE_SCHEMES:
        known = ", ".join(sorted({"file", *STORE_SCHEMES}))
        raise ConfigError(f"unknown storage scheme {scheme!r} in {text!r} (known: {known}, or a "
                          "plain path)")
    rest = match["rest"].strip("/")
    if not rest or rest.startswith("/"):
        raise ConfigError(f"{text!r} names no bucket: write {scheme}://BUCKET/PREFIX")
    return f"{scheme}://{rest}"


def open_root(location: str | os.PathLike[str]) -> Root:
    """The root at `location` (a path or URL)."""
    url = root_url(location)
    return StoreRoot(url) if is_url(url) else LocalRoot(url)


def local_copy(location: str | os.PathLike[str],
               missing: type[OcrPipelineError] = DataError) -> Path:
    """A local path holding the file or folder at `location`: the path itself, or a copy of a
    store's object or prefix in the scratch cache.

    Raises:
        missing: nothing is at `location` (the message names it).
    """
    url = root_url(location)
    if not is_url(url):
        return Path(url)
    root = open_root(url)
    versions = root.files()
    if "" in versions:  # a file: copy it from its folder
        folder, name = url.rsplit("/", 1)
        return open_root(folder).pull(name)
    if not versions:
        raise missing(f"no such file or folder: {url}")
    return root.pull("")


class KeyLock(Protocol):
    """A lock of a root (`Root.lock`)."""

    def acquire(self, timeout: float | None = None) -> None: ...  # LockTimeout after `timeout`
    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...
    def is_locked(self) -> bool: ...
    def held(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]: ...


class Root(ABC):
    """A folder of keyed files, local or on a store.

    Attributes:
        url: the canonical location (`root_url`).
        local: where steps read and write this root's keys on this machine.
    """

    url: str
    local: Path
    is_local: bool

    def __reduce__(self) -> tuple[Any, ...]:  # pickles as its URL (Dask workers reopen it)
        return open_root, (self.url,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Root) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def location(self, key: str) -> str:
        """The URL (or local path) of `key`."""
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    def key_of(self, location: str | os.PathLike[str]) -> str | None:
        """The key of a location under this root (its mirror included), else None."""
        text = os.fspath(location)
        for base in (self.url, str(self.local)):
            base = base.rstrip("/")
            if text == base:
                return ""
            if text.startswith(base + "/"):
                return text[len(base) + 1:]
        return None

    # Files on the root itself

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The bytes of file `key` (FileNotFoundError when there is none)."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, str]:
        """The bytes of file `key` and the version they are."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False,
                    if_version: str | None = None) -> str:
        """Write file `key` whole; returns its new version.

        Args:
            create_only: fail (FileExistsError) if the file exists.
            if_version: replace the file only if it is still that version (else StorageConflict).
        """

    @abstractmethod
    def files(self, key: str = "") -> FileVersions:
        """Size and version of each file under `key` (a folder) or of the file `key` ("")."""

    @abstractmethod
    def listdir(self, key: str = "") -> list[str]:
        """Names directly under folder `key` (files and folders), without hidden ones."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """Remove file or folder `key` if it is there."""

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, value: Any, **conditions: Any) -> str:
        text = json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
        return self.write_bytes(key, text.encode(), **conditions)

    def exists(self, key: str) -> bool:
        return bool(self.files(key))

    def stamp(self, key: str) -> str | None:
        """The stamp of `key` now (None when it holds no file)."""
        versions = self.files(key)
        return stamp_of(versions) if versions else None

    # Keys as local files

    @abstractmethod
    def pull(self, key: str, stamp: str | None = None) -> Path:
        """A local path holding `key`'s files as the root has them now (or as `stamp`)."""

    @abstractmethod
    def push(self, key: str) -> str | None:
        """Publish the local files of `key` (if this machine has them) to the root, whole;
        returns the root's stamp of `key` (None when it holds no file)."""

    @abstractmethod
    def discard(self, key: str) -> None:
        """Take `key` out of use (its bytes are not what was written): set aside on a folder,
        removed from a store and from this machine's copy."""

    @abstractmethod
    def put(self, folder: Path, key: str) -> None:
        """Move the files of the local `folder` under `key` (replacing files of the same name)."""

    @contextlib.contextmanager
    def pinned(self, keys: list[str]) -> Iterator[None]:
        """Keep the local copies of `keys` from being evicted while the block runs."""
        yield

    # Locks

    @abstractmethod
    def lock(self, name: str) -> KeyLock:
        """Lock `name` of this root: exclusive across processes (and machines, for a store), and
        free again when its holder dies."""


class LocalRoot(Root):
    """A folder on this machine, read and written in place."""

    is_local = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = Path(url)

    def _path(self, key: str) -> Path:
        return self.local / key if key else self.local

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        with open(path, "rb") as handle:
            data = handle.read()
            stat = os.fstat(handle.fileno())
        return data, _file_version(stat)

    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False,
                    if_version: str | None = None) -> str:
        path = self._path(key)
        if if_version is not None:
            try:
                current = _file_version(path.stat())
            except FileNotFoundError:
                current = None
            if current != if_version:
                raise StorageConflict(f"{path} changed since it was read")
        if create_only:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:12]}"
            try:
                tmp.write_bytes(data)
                os.link(tmp, path)  # FileExistsError if it is there: the one there stays
            finally:
                tmp.unlink(missing_ok=True)
        else:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        return _file_version(path.stat())

    def files(self, key: str = "") -> FileVersions:
        return local_versions(self._path(key))

    def stamp(self, key: str) -> str | None:
        memo = self.local / STAMPS_FOLDER / f"{key.replace('/', '%2F') or '%root'}.json"
        versions = content_versions(self._path(key), memo)
        return stamp_of(versions) if versions else None

    def listdir(self, key: str = "") -> list[str]:
        folder = self._path(key)
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) \
            if folder.is_dir() else []

    def remove(self, key: str) -> None:
        remove_path(self._path(key))

    def pull(self, key: str, stamp: str | None = None) -> Path:
        return self._path(key)

    def push(self, key: str) -> str | None:
        return self.stamp(key)

    def discard(self, key: str) -> None:
        move_aside(self._path(key))

    def put(self, folder: Path, key: str) -> None:
        target = self._path(key)
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            os.replace(path, target / path.name)

    def lock(self, name: str) -> KeyLock:
        from ocr_core.cache.locks import FileKeyLock

        return FileKeyLock(self.local, name)


class StoreRoot(Root):
    """A prefix on an object store, mirrored key by key in the scratch cache."""

    is_local = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = scratch.mirror_of(url)
        self._fs: Any = None
        self._base = ""

    @property
    def fs(self) -> Any:
        """The fsspec file system (opened on first use; listings are never cached)."""
        if self._fs is None:
            import fsspec

            scheme = self.url.split("://", 1)[0]
            with translated(self.url, package=STORE_SCHEMES[scheme]):
                self._fs, self._base = fsspec.core.url_to_fs(self.url, use_listings_cache=False)
        return self._fs

    def _full(self, key: str) -> str:
        self.fs  # noqa: B018  (opens it, which sets the base)
        return f"{self._base.rstrip('/')}/{key}" if key else self._base

    def read_bytes(self, key: str) -> bytes:
        with translated(self.location(key)):
            return self.fs.cat_file(self._full(key))

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        with translated(self.location(key)), self.fs.open(self._full(key), "rb") as handle:
            return handle.read(), _version(handle.details)

    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False,
                    if_version: str | None = None) -> str:
        options: dict[str, Any] = {"mode": "create"} if create_only else {}
        if if_version is not None:
            options["IfMatch"] = if_version
        with translated(self.location(key)):
            response = self.fs.pipe_file(self._full(key), data, **options)
        etag = response.get("ETag") if isinstance(response, dict) else None
        return etag.strip('"') if etag else self.files(key)[""][1]

    def files(self, key: str = "") -> FileVersions:
        full = self._full(key)
        with translated(self.location(key)):
            try:
                found = self.fs.find(full, detail=True)
            except FileNotFoundError:
                return {}
        versions = {}
        for name, info in found.items():
            relative = "" if name.rstrip("/") == full.rstrip("/") else name[len(full.rstrip("/")) + 1:]
            if not any(part.startswith(".") for part in relative.split("/") if part):
                versions[relative] = (int(info["size"]), _version(info))
        return versions

    def modified(self, key: str = "") -> dict[str, tuple[int, float]]:
        """Size and last-modified time (seconds since the epoch) of each file under `key`."""
        full = self._full(key).rstrip("/")
        with translated(self.location(key)):
            try:
                found = self.fs.find(full, detail=True)
            except FileNotFoundError:
                return {}
        return {name[len(full) + 1:]: (int(info["size"]), _modified(info))
                for name, info in found.items() if name != full}

    def listdir(self, key: str = "") -> list[str]:
        with translated(self.location(key)):
            try:
                entries = self.fs.ls(self._full(key), detail=False)
            except FileNotFoundError:
                return []
        names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries}
        return sorted(name for name in names if name and not name.startswith("."))

    def remove(self, key: str) -> None:
        with translated(self.location(key)), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._full(key), recursive=True)

    def pull(self, key: str, stamp: str | None = None) -> Path:
        target = self.local / key if key else self.local
        versions = self.files(key)
        if not versions:
            raise FileNotFoundError(f"{self.location(key)} holds no file")
        now = stamp_of(versions)
        if scratch.recorded_stamp(self.url, key) == now and local_versions(target).keys() == \
                versions.keys():
            scratch.touch(self.url, key)
            return target
        with atomic_path(target, is_dir="" not in versions) as tmp:
            with translated(self.location(key)):
                if "" in versions:
                    self.fs.get_file(self._full(key), str(tmp))
                else:
                    self.fs.get([self._full(f"{key}/{name}" if key else name)
                                 for name in versions],
                                [str(tmp / name) for name in versions])
            if target.exists():  # an older copy: replace it
                aside = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
                os.rename(target, aside)
                remove_path(aside)
        scratch.record_stamp(self.url, key, now, sum(size for size, _ in versions.values()),
                             local_versions=local_versions(target))
        scratch.trim()
        return target

    def push(self, key: str) -> str | None:
        source = self.local / key if key else self.local
        local = local_versions(source)
        if local and not self._in_store(key, local):
            names = sorted(local, key=lambda name: (Path(name).name in scratch.COMMIT_MARKERS, name))
            with translated(self.location(key)):
                if "" in local:
                    self.fs.put_file(str(source), self._full(key))
                else:  # markers last: a lister sees them only once the rest is whole
                    for name in names:
                        self.fs.put_file(str(source / name), self._full(f"{key}/{name}"))
        stamp = self.stamp(key)
        if local:
            scratch.record_stamp(self.url, key, stamp, sum(size for size, _ in local.values()),
                                 local_versions=local)
        return stamp

    def _in_store(self, key: str, local: FileVersions) -> bool:
        """Whether the store holds the local copy of `key` already: the copy is untouched since
        it was pulled or pushed, and the store's files are still those it was copied from."""
        return (scratch.recorded_local_versions(self.url, key) == local
                and scratch.recorded_stamp(self.url, key) == self.stamp(key))

    def discard(self, key: str) -> None:
        self.remove(key)
        remove_path(self.local / key)
        scratch.forget(self.url, key)

    def put(self, folder: Path, key: str) -> None:
        with translated(self.location(key)):
            for path in sorted(folder.iterdir()):
                self.fs.put_file(str(path), self._full(f"{key}/{path.name}" if key else path.name))
                path.unlink()

    @contextlib.contextmanager
    def pinned(self, keys: list[str]) -> Iterator[None]:
        with scratch.pinned(self.url, keys):
            yield

    def lock(self, name: str) -> KeyLock:
        from ocr_core.storage.leases import Lease

        return Lease(self, f"locks/{name}.json")


def _file_version(stat: os.stat_result) -> str:
    """A local file's version for conditional writes: its size and modification time."""
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _modified(info: dict[str, Any]) -> float:
    stamp = info.get("LastModified") or info.get("mtime") or info.get("updated")
    return stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp or 0)


def _version(info: dict[str, Any]) -> str:
    """A file's version from its listing: the ETag (content MD5 for S3's single-part writes),
    else the generation or modification time the store reports."""
    for field in ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified"):
        if info.get(field):
            return str(info[field]).strip('"')
    return ""
