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
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ocr_core.errors import ConfigError, DataError, OcrPipelineError
from ocr_core.storage.stamps import FileVersions, stamp_of

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
    from ocr_core.storage.local import LocalRoot
    from ocr_core.storage.store import StoreRoot

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


def local_copies(locations: Sequence[str | os.PathLike[str]],
                 missing: type[OcrPipelineError] = DataError) -> list[Path]:
    """A local path for each file at `locations`, in order: a path as it is, a store's file
    copied into the scratch cache (one listing and one batched download per store folder, a
    copy already there at the store's version reused).

    Raises:
        missing: a store file is not there (the message names its URL).
    """
    urls = [root_url(location) for location in locations]
    folders: dict[str, list[str]] = {}
    for url in urls:
        if is_url(url):
            folder, name = url.rsplit("/", 1)
            folders.setdefault(folder, []).append(name)
    copies: dict[str, Path] = {}
    for folder, names in folders.items():
        try:
            paths = open_root(folder).pull_files(names)
        except FileNotFoundError as error:
            raise missing(str(error)) from None
        copies |= {f"{folder}/{name}": path for name, path in zip(names, paths, strict=True)}
    return [copies[url] if is_url(url) else Path(url) for url in urls]


class KeyLock(ABC):
    """A lock of a root (`Root.lock`): a file lock on a folder, a lease on a store."""

    @abstractmethod
    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (LockTimeout after `timeout` seconds)."""

    @abstractmethod
    def try_acquire(self) -> bool: ...

    @abstractmethod
    def release(self) -> None: ...

    @abstractmethod
    def is_locked(self) -> bool:
        """Whether anyone holds it now."""

    @contextlib.contextmanager
    def held(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock for the block."""
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()


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
    def pull(self, key: str) -> Path:
        """A local path holding `key`'s files as the root has them now."""

    def pull_files(self, keys: Sequence[str]) -> list[Path]:
        """Local paths holding the files `keys` (a store copies them in one batch)."""
        return [self.pull(key) for key in keys]

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
