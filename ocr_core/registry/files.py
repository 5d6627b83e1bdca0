"""The files of registered versions: copied in whole from a bundle, and checked against their
recorded sha256 before use (`ocr_core.registry`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ocr_core.bundle.format import BUNDLE_FILE, MODEL_FILE
from ocr_core.errors import RegistryError
from ocr_core.files import sha256_file, sha256_json


def bundle_digest(folder: Path) -> str:
    """Content hash that identifies a bundle: its model file and its description."""
    return sha256_json({name: sha256_file(folder / name) for name in (MODEL_FILE, BUNDLE_FILE)})


def check_files(name: str, folder: Path, info: dict[str, Any]) -> None:
    """Check version `name`'s files in `folder` against the digests its record `info` holds.

    Raises:
        RegistryError: a file is missing or its content changed; the message names it.
    """
    recorded = info.get("files")
    if recorded is None:  # registered before per-file digests: the bundle digest covers two
        if bundle_digest(folder) != info["digest"]:
            raise RegistryError(f"registered {name} changed since registration: "
                                f"{folder / MODEL_FILE} or {folder / BUNDLE_FILE} differs from "
                                "the record")
        return
    for file_name, digest in recorded.items():
        path = folder / file_name
        if not path.is_file():
            raise RegistryError(f"registered {name} lost a file: {path}")
        if sha256_file(path) != digest:
            raise RegistryError(f"registered {name} changed since registration: "
                                f"{path} differs from its recorded sha256 {digest[:12]}; "
                                "restore it or register the model again")


def _file_ids(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.iterdir() if p.is_file()}


def snapshot(source: Path, target: Path, attempts: int = 5) -> None:
    """Copy the files of `source` into `target`, all from one version of `source`.

    Copies, not hard links: an edit of the cache's file must not change a registered version.
    A concurrent run may replace the bundle folder (same cache key) while it is read; the file
    identities before and after tell, and the copy is retried.
    """
    for _ in range(attempts):
        try:
            before = _file_ids(source)
            for name in before:
                shutil.copy2(source / name, target / name)
            if _file_ids(source) == before:
                return
        except FileNotFoundError:
            pass
        for path in target.iterdir():
            path.unlink()
    raise RegistryError(f"bundle {source} kept changing while it was being registered")
