"""A results root that is a prefix on an object store, through fsspec (s3fs for `s3://`)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ocr_core.files import atomic_path, remove_path
from ocr_core.storage import scratch
from ocr_core.storage.errors import is_missing_bucket, translated
from ocr_core.storage.roots import STORE_SCHEMES, KeyLock, Root
from ocr_core.storage.stamps import FileVersions, local_versions, stamp_of


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
        found = self._listed(key, self.fs.find, full, detail=True) or {}
        versions = {}
        for name, info in found.items():
            relative = "" if name.rstrip("/") == full.rstrip("/") else name[len(full.rstrip("/")) + 1:]
            if not any(part.startswith(".") for part in relative.split("/") if part):
                versions[relative] = (int(info["size"]), _version(info))
        return versions

    def modified(self, key: str = "") -> dict[str, tuple[int, float]]:
        """Size and last-modified time (seconds since the epoch) of each file under `key`."""
        full = self._full(key).rstrip("/")
        found = self._listed(key, self.fs.find, full, detail=True) or {}
        return {name[len(full) + 1:]: (int(info["size"]), _modified(info))
                for name, info in found.items() if name != full}

    def listdir(self, key: str = "") -> list[str]:
        entries = self._listed(key, self.fs.ls, self._full(key), detail=False) or []
        names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries}
        return sorted(name for name in names if name and not name.startswith("."))

    def remove(self, key: str) -> None:
        with translated(self.location(key)), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._full(key), recursive=True)

    def pull(self, key: str) -> Path:
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

    def pull_files(self, keys: Sequence[str]) -> list[Path]:
        """Local copies of the files `keys`, as the root has them now: one listing per folder,
        then one batched download (fsspec fetches the files at once) of those whose copy is
        missing or another version. Each file is its own key in the scratch cache, as
        `pull(key)` of a file would make it.

        Raises:
            FileNotFoundError: a key is not a file on the root (the message names its URL).
        """
        listed: dict[str, tuple[int, str]] = {}
        for folder in dict.fromkeys(key.rpartition("/")[0] for key in keys):
            listed |= self._folder_files(folder)
        stale = []
        for key in dict.fromkeys(keys):
            if key not in listed:
                raise FileNotFoundError(f"no such file: {self.location(key)}")
            if scratch.recorded_stamp(self.url, key) == stamp_of({"": listed[key]}) and \
                    (self.local / key).is_file():
                scratch.touch(self.url, key)
            else:
                stale.append(key)
        temporary = {key: (self.local / key).with_name(f".tmp-{Path(key).name}-{uuid.uuid4().hex[:12]}")
                     for key in stale}
        try:
            for path in temporary.values():
                path.parent.mkdir(parents=True, exist_ok=True)
            if stale:
                with translated(self.url):
                    self.fs.get([self._full(key) for key in stale],
                                [str(temporary[key]) for key in stale])
            for key in stale:  # each copy appears whole: a reader never sees half an image
                os.replace(temporary[key], self.local / key)
                scratch.record_stamp(self.url, key, stamp_of({"": listed[key]}), listed[key][0],
                                     local_versions=local_versions(self.local / key))
        finally:
            for path in temporary.values():
                path.unlink(missing_ok=True)
        if stale:
            scratch.trim()
        return [self.local / key for key in keys]

    def _listed(self, key: str, listing: Callable[..., Any], path: str, **options: Any) -> Any:
        """`listing(path, **options)` (an fsspec listing), or None when nothing is under `key`;
        a missing bucket is not an absent key: it raises, named by `translated`."""
        with translated(self.location(key)):
            try:
                return listing(path, **options)
            except FileNotFoundError as error:
                if is_missing_bucket(error):
                    raise
                return None

    def _folder_files(self, folder: str) -> dict[str, tuple[int, str]]:
        """Size and version of the files directly in `folder`, by key."""
        entries = self._listed(folder, self.fs.ls, self._full(folder).rstrip("/"), detail=True) or []
        prefix = f"{folder}/" if folder else ""
        return {prefix + info["name"].rstrip("/").rsplit("/", 1)[-1]: (int(info["size"]),
                                                                      _version(info))
                for info in entries if info.get("type") == "file"}

    def push(self, key: str) -> str | None:
        source = self.local / key if key else self.local
        local = local_versions(source)
        if local and not self._in_store(key, local):
            with translated(self.location(key)):
                if "" in local:
                    self.fs.put_file(str(source), self._full(key))
                else:  # markers last: a lister sees them only once the rest is whole
                    markers = {name for name in local if Path(name).name in scratch.COMMIT_MARKERS}
                    for names in (sorted(set(local) - markers), sorted(markers)):
                        self._upload(source, key, names)
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
        paths = sorted(folder.iterdir())
        with translated(self.location(key)):
            self._upload(folder, key, [path.name for path in paths])
        for path in paths:
            path.unlink()

    def _upload(self, folder: Path, key: str, names: list[str]) -> None:
        """Upload `folder`'s files `names` under `key` in one call (fsspec sends them at once)."""
        if names:
            self.fs.put([str(folder / name) for name in names],
                        [self._full(f"{key}/{name}" if key else name) for name in names])

    @contextlib.contextmanager
    def pinned(self, keys: list[str]) -> Iterator[None]:
        with scratch.pinned(self.url, keys):
            yield

    def lock(self, name: str) -> KeyLock:
        from ocr_core.storage.leases import Lease

        return Lease(self, f"locks/{name}.json")


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
