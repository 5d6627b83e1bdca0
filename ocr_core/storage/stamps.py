"""Stamps: what a key's files are, cheaply, so a reader can tell they are still those written.

A file's version is what the store reports without reading it: S3's ETag (the content's MD5
for single-part writes, kept by a server-side copy), a local file's size and modification time
(kept by `mv`, `cp -a` and `rsync -a`). A stamp digests every file's name, size and version:
checking one costs a listing, never a read of the bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from ocr_core.files import sha256_json

FileVersions = dict[str, tuple[int, str]]
"""Size and version by file name relative to a key ("" when the key is a file)."""


def stamp_of(versions: FileVersions) -> str:
    """The stamp of a key whose files are `versions`."""
    return sha256_json(sorted([name, size, version] for name, (size, version) in versions.items()))[:24]


def local_versions(path: Path) -> FileVersions:
    """Size and version of the file `path` ("") or of every file under the folder `path`,
    leaving out hidden names (temporary and set-aside copies)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    if not path.is_dir():
        return {"": (stat.st_size, f"{stat.st_size}:{stat.st_mtime_ns}")}
    found = {}
    for folder, dirs, names in os.walk(path):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            full = os.path.join(folder, name)
            stat = os.stat(full)
            found[os.path.relpath(full, path)] = (stat.st_size, f"{stat.st_size}:{stat.st_mtime_ns}")
    return found
