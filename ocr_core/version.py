"""Versions: the package's, the source's (a content hash) and the installed libraries'.

Model bundles record all three. Cache keys hash the source each step runs and the libraries it
imports (`tasks.code_identity`) with the same file hasher and library list.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from collections.abc import Iterable
from pathlib import Path

from ocr_core.files import sha256_file


def _package_version() -> str:
    try:
        return importlib.metadata.version("ocr-pipeline")  # pyproject.toml's, the one source
    except importlib.metadata.PackageNotFoundError:  # run from a source tree never installed
        return "0+unknown"


__version__ = _package_version()

LIBRARIES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "captcha": ("captcha",),
    "pillow": ("pillow",),
    "tensorflow-datasets": ("tensorflow-datasets",),
    "matplotlib": ("matplotlib",),
    "google-re2": ("google-re2",),
}
"""Libraries whose version can change a step's output bytes, with the distributions they install as."""

LIBRARY_IMPORTS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "numpy"),
    "keras": ("keras", "tensorflow", "numpy"),
    "numpy": ("numpy",),
    "captcha": ("captcha", "pillow"),
    "PIL": ("pillow",),
    "tensorflow_datasets": ("tensorflow-datasets", "tensorflow", "numpy"),
    "matplotlib": ("matplotlib", "numpy"),
    "re2": ("google-re2",),
}
"""Top-level import name -> the `LIBRARIES` whose versions code importing it depends on."""


@functools.cache
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def files_digest(paths: Iterable[Path], root: Path) -> str:
    """Hash of the files' contents and names (relative to `root` where under it).

    Cheap after the first call in a process: files are hashed once per version (mtime, size).
    """
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
        digest.update(_file_digest(path, stat.st_mtime_ns, stat.st_size).encode())
    return digest.hexdigest()[:24]


def _installed_version(names: Iterable[str]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def library_versions() -> dict[str, str | None]:
    """Installed versions of `LIBRARIES` (None where one is not installed)."""
    return {library: _installed_version(names) for library, names in LIBRARIES.items()}


@functools.cache
def code_version() -> str:
    """Hash of every `ocr_core` source file: any edit to the library changes it."""
    package = Path(__file__).parent
    return files_digest(sorted(package.rglob("*.py")), package)[:16]
