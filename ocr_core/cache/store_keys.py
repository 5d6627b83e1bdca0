"""`cache ls|prune` on a store root: the keys found in one listing of the prefix.

The same rules as a folder's (`ocr_core.cache.entries`), with what a store offers: a key's age
is the last write of its objects (stores keep no read times), nothing is hard-linked, and a
key's lock is its lease (`ocr_core.storage.leases`). Records and registry files are read as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from ocr_core.cache.entries import (
    KEY_PATTERN,
    NOT_KEYED,
    KeyEntry,
    keyed_name,
    record_text,
)
from ocr_core.storage import Root

RESULTS = "prefect-results"


def _place_of(name: str) -> str | None:
    """The keyed place a file of the root belongs to (`models/crnn-<key>`), if any."""
    parts = name.split("/")
    if any(part.startswith(".") for part in parts) or len(parts) < 2:
        return None
    if parts[0] == RESULTS:
        return name if len(parts) == 2 and KEY_PATTERN.fullmatch(parts[1]) else None
    if parts[0] in NOT_KEYED:
        return None
    if keyed_name(parts[1]):
        return "/".join(parts[:2])
    if len(parts) > 2 and keyed_name(parts[2]):
        return "/".join(parts[:3])  # data/<kind>/<key>
    return None


def scan_store(root: Root) -> dict[str, KeyEntry]:
    """Every key of the store root with its places, size, last write and references."""
    entries: dict[str, KeyEntry] = {}
    for name, (size, modified) in root.modified().items():
        place = _place_of(name)
        if place is None:
            continue
        key = keyed_name(PurePosixPath(place).name)
        item = entries.setdefault(key, KeyEntry(key))
        path = PurePosixPath(place)
        if path not in item.places:
            item.places.append(path)
        item.size += size
        item.unshared += size
        item.written = max(item.written, modified)
    for key, item in list(entries.items()):
        for place in item.places:
            if place.parent.name == RESULTS:
                text = record_text(root.read_bytes(str(place)))
                for other in set(KEY_PATTERN.findall(text)) & entries.keys():
                    entries[other].records.add(key)
    for name in _registry_files(root):
        label = PurePosixPath(name).parent.name if "/versions/" in name else PurePosixPath(name).stem
        text = root.read_bytes(name).decode(errors="replace")
        for key in set(KEY_PATTERN.findall(text)) & entries.keys():
            entries[key].registry.add(label)
    return entries


def _registry_files(root: Root) -> Iterator[str]:
    for name in root.modified("registry"):
        if name.endswith(".json"):
            yield f"registry/{name}"


def remove_store_key(root: Root, item: KeyEntry) -> bool:
    """Remove a key's objects (its record first) under its lock; False when a run holds it."""
    lock = root.lock(item.key)
    if not lock.try_acquire():
        return False
    try:
        for place in sorted(item.places, key=lambda p: p.parent.name != RESULTS):
            root.remove(str(place))
    finally:
        lock.release()
    return True
