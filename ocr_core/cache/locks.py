"""One writer per step key on a local root: a file lock under the results root.

`<results root>/locks/<step_key>.lock` is an advisory `flock` lock (`filelock.FileLock`): the
operating system releases it when its process dies, so a killed run never leaves a key locked
(Prefect's `FileSystemLockManager` writes a lock file that outlives a killed holder, and the
key would then wait forever). A store root locks with leases instead (`ocr_core.storage.leases`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ocr_core.layout import ResultsLayout
from ocr_core.storage.errors import LockTimeout
from ocr_core.storage.roots import KeyLock


def lock_path(results_dir: Path, step_key: str) -> Path:
    """The lock file of `step_key` under the results root `results_dir`."""
    return ResultsLayout(Path(results_dir)).locks / f"{step_key}.lock"


class FileKeyLock(KeyLock):
    """The lock of one key of a local root (a store's is `ocr_core.storage.leases.Lease`)."""

    def __init__(self, results_dir: Path, name: str) -> None:
        self.path = lock_path(results_dir, name)
        # The file stays: removing it on release would let a newcomer lock a new file while a
        # waiter still holds the old one. Not thread-local: Prefect may release on another thread.
        self._lock = FileLock(self.path, thread_local=False, preserve_lock_file=True)

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (at most `timeout` seconds; LockTimeout after)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise LockTimeout(f"{self.path} stayed locked") from None

    def try_acquire(self) -> bool:
        try:
            self.acquire(timeout=0)
        except LockTimeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()

    def is_locked(self) -> bool:
        """Whether some process (this one included) holds the lock now."""
        if not self.path.exists():
            return False
        probe = FileKeyLock(self.path.parent.parent, self.path.stem)
        if not probe.try_acquire():
            return True
        probe.release()
        return False


@contextlib.contextmanager
def step_lock(results_dir: Path, step_key: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock of `step_key` for the block (at most `timeout` seconds of waiting, then
    LockTimeout)."""
    with FileKeyLock(results_dir, step_key).held(timeout):
        yield


def is_step_locked(results_dir: Path, step_key: str) -> bool:
    """Whether some process (this one included) holds the lock of `step_key` now."""
    return FileKeyLock(results_dir, step_key).is_locked()
