"""Unpack a zip archive safely, and find the folder of images inside it.

Every entry is checked before anything is written: absolute paths, `..` components, symlinks,
duplicate names and decompression bombs (total size, compression ratio, entry count) are refused
with an error naming the entry. Extraction goes into a fresh temporary folder that is renamed into
place only when complete; `__MACOSX/` resource forks and hidden files are skipped.
"""

from __future__ import annotations

import logging
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ocr_core.errors import DataError, UnsafeArchiveError
from ocr_core.files import atomic_path

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds that separate a dataset from a decompression bomb.

    `max_ratio` (uncompressed / compressed) applies to entries larger than `ratio_floor` bytes:
    small files can compress far on their own. PNGs barely compress at all (ratio about 1).
    """

    max_total_bytes: int = 2 * 2**30
    max_ratio: float = 200.0
    ratio_floor: int = 2**20
    max_entries: int = 100_000


@dataclass(frozen=True)
class ExtractionResult:
    """What was unpacked: the folder, and how many files and bytes it holds."""

    path: Path
    files: int
    size: int


def extract_zip(
    archive: str | Path, target: str | Path, limits: ArchiveLimits | None = None
) -> ExtractionResult:
    """Unpack `archive` into `target`, all or nothing. An existing `target` is kept: extraction
    folders are named by the archive's content, and another run may be reading the one there.

    Raises:
        UnsafeArchiveError: an entry is unsafe or the archive is a decompression bomb.
        DataError: the file is not a readable zip.
    """
    limits = limits or ArchiveLimits()
    archive = Path(archive)
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = safe_members(bundle, limits, name=archive.name)
            with atomic_path(target, is_dir=True) as tmp:
                size = sum(_extract_member(bundle, member, tmp, archive.name) for member in members)
    except zipfile.BadZipFile as error:
        raise DataError(f"{archive} is not a readable zip archive: {error}") from None
    logger.info("extracted %d files (%.1f MiB) from %s into %s", len(members), size / 2**20,
                archive.name, target)
    return ExtractionResult(Path(target), len(members), size)


def safe_members(
    bundle: zipfile.ZipFile, limits: ArchiveLimits, name: str = "archive"
) -> list[zipfile.ZipInfo]:
    """The regular-file entries to extract, after checking every entry and the totals.

    Raises:
        UnsafeArchiveError: naming the first unsafe entry, or the totals that pass a limit.
    """
    entries = bundle.infolist()
    if len(entries) > limits.max_entries:
        raise UnsafeArchiveError(
            f"{name}: {len(entries)} entries, more than the limit of {limits.max_entries}")
    members, seen, total = [], set(), 0
    for entry in entries:
        parts = _checked_parts(entry, name)
        if entry.is_dir() or _ignored(parts):
            continue
        key = "/".join(parts)
        if key in seen:
            raise UnsafeArchiveError(f"{name}: entry {entry.filename!r} appears twice")
        seen.add(key)
        if (entry.file_size > limits.ratio_floor
                and entry.file_size > limits.max_ratio * max(entry.compress_size, 1)):
            raise UnsafeArchiveError(
                f"{name}: entry {entry.filename!r} expands {entry.compress_size} bytes to "
                f"{entry.file_size} (ratio above {limits.max_ratio:g}): a decompression bomb?")
        total += entry.file_size
        if total > limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{name}: more than {limits.max_total_bytes} bytes uncompressed (limit reached "
                f"at entry {entry.filename!r}): a decompression bomb?")
        members.append(entry)
    return members


def _checked_parts(entry: zipfile.ZipInfo, name: str) -> tuple[str, ...]:
    """The entry's path components, refusing anything that could land outside the target."""
    filename = entry.filename
    if filename.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(filename):
        raise UnsafeArchiveError(f"{name}: entry {filename!r} has an absolute path")
    parts = tuple(p for p in re.split(r"[\\/]", filename) if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(f"{name}: entry {filename!r} climbs out of the folder with '..'")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise UnsafeArchiveError(f"{name}: entry {filename!r} is a symbolic link")
    if "\x00" in filename:
        raise UnsafeArchiveError(f"{name}: entry {filename!r} has a NUL byte in its name")
    return parts


def _ignored(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and hidden files are not data."""
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _extract_member(bundle: zipfile.ZipFile, entry: zipfile.ZipInfo, root: Path, name: str) -> int:
    """Copy one entry below `root`; returns the bytes written.

    `zipfile` stops reading at the declared size and checks the CRC, so an entry whose header
    understates its size fails with BadZipFile instead of overflowing the limits.
    """
    destination = root.joinpath(*_checked_parts(entry, name))
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with bundle.open(entry) as source, open(destination, "xb") as sink:
            shutil.copyfileobj(source, sink, _CHUNK)
    except FileExistsError:  # two names that differ only in case, on a case-insensitive disk
        raise UnsafeArchiveError(
            f"{name}: entry {entry.filename!r} collides with another entry") from None
    return entry.file_size


def find_image_folder(root: str | Path, suffix: str = ".png") -> Path:
    """The one folder under `root` (itself included) that directly holds `suffix` files.

    Archives often wrap their files in a top folder (`captcha_images_v2/`); this finds it.

    Raises:
        DataError: no folder, or more than one, holds such files.
    """
    root = Path(root)
    candidates = sorted({
        path.parent for path in root.rglob("*")
        if path.suffix.lower() == suffix and not path.name.startswith(".") and path.is_file()
    })
    if not candidates:
        raise DataError(f"no {suffix} files in {root}")
    if len(candidates) > 1:
        listed = ", ".join(str(c.relative_to(root)) for c in candidates[:5])
        raise DataError(f"{suffix} files are spread over {len(candidates)} folders in {root} "
                        f"({listed}); expected one folder of images")
    return candidates[0]
