"""File helpers: content hashing and all-or-nothing writes, so no half-written file is ever cached."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hex sha256 of a JSON-able value in canonical form (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `target`; rename it onto `target` only if the block succeeds.

    A failure (or a kill) leaves at most a `.tmp-*` sibling behind, never a partial `target`.
    An existing file is replaced (atomically: a reader has the old or the new one). An existing
    folder is kept and the new one dropped: folders are named by their content key, so the one
    there holds the same content, and another run may be reading it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp/mkdtemp: those create 0600/0700, and results must be readable as the umask allows.
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:12]}"
    if is_dir:
        tmp.mkdir()
    else:
        tmp.touch(exist_ok=False)
    try:
        yield tmp
        if is_dir:
            _rename_unless_there(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        remove_path(tmp)
        raise



def save_png(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a matplotlib figure to `path` as a PNG, atomically (a reader never sees half a plot)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path

def _rename_unless_there(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)  # fails onto a non-empty folder: then the one there stays
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        remove_path(source)


def move_aside(path: str | os.PathLike[str]) -> Path | None:
    """Rename `path` to a hidden `.old-<name>-<id>` sibling (not deleted: another run may still
    be reading it); None if there was nothing there."""
    path = Path(path)
    aside = path.parent / f".old-{path.name}-{uuid.uuid4().hex[:12]}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    return aside


def write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write `value` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def remove_path(path: str | os.PathLike[str]) -> None:
    """Remove a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def utc_timestamp() -> str:
    """The current UTC time to the second, as written in records (ISO 8601)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
