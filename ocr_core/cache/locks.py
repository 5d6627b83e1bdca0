"""One writer per step key: a file lock under the results root, held while a step computes.

`<results root>/locks/<step_key>.lock` is an advisory `fcntl` lock (`filelock.FileLock`): the
operating system releases it when its process dies, so a killed run never leaves a key locked.
Two processes (or Dask workers) that miss the same key take turns: the second waits, then finds
the first's result (`tasks.caching`). `cache prune` takes a key's lock without waiting before it
removes the key's folders, and skips a key whose lock is held.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ocr_core.layout import ResultsLayout


def lock_path(results_dir: Path, step_key: str) -> Path:
    """The lock file of `step_key` under the results root `results_dir`."""
    return ResultsLayout(Path(results_dir)).locks / f"{step_key}.lock"


@contextlib.contextmanager
def step_lock(results_dir: Path, step_key: str, timeout: float = -1) -> Iterator[None]:
    """Hold the lock of `step_key` for the block, waiting as long as another process holds it
    (or at most `timeout` seconds, then `filelock.Timeout`)."""
    path = lock_path(results_dir, step_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path).acquire(timeout=timeout):
        yield


def is_step_locked(results_dir: Path, step_key: str) -> bool:
    """Whether some process (this one included) holds the lock of `step_key` now."""
    path = lock_path(results_dir, step_key)
    if not path.exists():
        return False
    lock = _lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _lock(path: Path) -> FileLock:
    # The file stays: removing it on release would let a newcomer lock a new file while a
    # waiter still holds the old one. Not thread-local: Prefect may finish a task on another thread.
    return FileLock(path, thread_local=False, preserve_lock_file=True)
