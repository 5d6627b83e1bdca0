"""A results root that is a folder on this machine, read and written in place."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ocr_core.files import atomic_path, move_aside, remove_path
from ocr_core.storage.errors import StorageConflict
from ocr_core.storage.roots import STAMPS_FOLDER, KeyLock, Root
from ocr_core.storage.stamps import FileVersions, content_versions, local_versions, stamp_of


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

    def pull(self, key: str) -> Path:
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


def _file_version(stat: os.stat_result) -> str:
    """A local file's version for conditional writes: its size and modification time."""
    return f"{stat.st_size}:{stat.st_mtime_ns}"
