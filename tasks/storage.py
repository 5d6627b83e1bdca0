"""Prefect's persisted results, written all or nothing.

Prefect 3.9.1's `LocalFileSystem.write_path` opens the result file and writes into it, so a kill
mid-write leaves a truncated record that a later run reads as a cache hit and fails on. It has no
option for atomic writes. `AtomicLocalFileSystem` writes a temporary sibling and renames it into
place (a rename within one folder is atomic on POSIX), and `use_atomic_result_storage()` makes it
the storage Prefect builds by default (from `PREFECT_LOCAL_STORAGE_PATH`) in this process.
Importing `tasks` calls it, so every process that runs the project's tasks (the CLI, a served
deployment, a Dask worker, a plain script) writes results atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import prefect.results
from prefect.filesystems import LocalFileSystem

from ocr_core.files import atomic_path


class AtomicLocalFileSystem(LocalFileSystem):
    """A LocalFileSystem whose writes are atomic: readers see the old file or the whole new one."""

    _block_type_name = "Atomic Local File System"

    def _write_atomically(self, path: str, content: bytes) -> str:
        target: Path = self._resolve_path(path)
        if target.exists() and not target.is_file():
            raise ValueError(f"Path {target} already exists and is not a file.")
        with atomic_path(target) as tmp:
            tmp.write_bytes(content)
        return str(target)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return self._write_atomically(path, content)

    def write_path(self, path: str, content: bytes, **_: Any) -> str:  # type: ignore[override]
        return self._write_atomically(path, content)


def use_atomic_result_storage() -> None:
    """Make Prefect's default result storage (a local folder) write atomically in this process.

    Prefect builds that storage from the name `LocalFileSystem` in `prefect.results`; a storage
    block a user configures (`PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`) is left as it is.
    """
    prefect.results.LocalFileSystem = AtomicLocalFileSystem  # type: ignore[misc]
    for key, storage in list(prefect.results._default_storages.items()):
        if type(storage) is LocalFileSystem:  # built before this call
            del prefect.results._default_storages[key]
