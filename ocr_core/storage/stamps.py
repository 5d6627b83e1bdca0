"""Stamps: what a key's files are, cheaply, so a reader can tell they are still those written.

A file's version stands for its content: on a store, the ETag it reports in a listing (the
content's MD5 for single-part writes, kept by a server-side copy); on a local root, the file's
sha256, read once and remembered with the file's size, modification time and inode, so a later
check costs a `stat` and reads again only a file that changed (or was copied, or touched). A
stamp digests every file's name, size and version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ocr_core.files import atomic_path, sha256_file, sha256_json

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


def content_versions(path: Path, memo: Path) -> FileVersions:
    """`local_versions` of `path` with each file's sha256 as its version, reusing the digests
    remembered in the JSON file `memo` for files whose size, modification time and inode are
    unchanged (and remembering the others)."""
    try:
        known = json.loads(memo.read_text())
    except (FileNotFoundError, ValueError):
        known = {}
    found, seen, changed = {}, {}, False
    files = [("", path)] if path.is_file() else [
        (name, path / name) for name in local_versions(path)]
    for name, file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = known.get(name)
        if entry is None or entry[:3] != identity:
            entry, changed = [*identity, sha256_file(file)], True
        seen[name] = entry
        found[name] = (stat.st_size, entry[3])
    if changed or seen.keys() != known.keys():
        with atomic_path(memo) as tmp:
            tmp.write_text(json.dumps(seen))
    return found
