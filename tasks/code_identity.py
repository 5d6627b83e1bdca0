"""The code a step's key covers: the source of the project modules it depends on, and the
versions of the libraries that shape its output bytes.

Kept apart from `tasks.caching` (which turns this into keys and Prefect cache policies) so that
what "the code of a step" means can be read, tested and changed in one place.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
from collections.abc import Iterable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the project's packages; module sources are read from here."""

PROJECT_PACKAGES = ("ocr_core", "tasks")
"""Packages whose source goes into keys; anything else imported counts as a library."""

LIBRARIES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "captcha": ("captcha",),
    "pillow": ("pillow",),
}
"""Libraries whose version goes into every key, with the distribution names they install as."""


def _module_path(name: str, root: Path) -> Path | None:
    """The file of module `name` under `root` (a module or a package's __init__), if any."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports_of(path: Path, root: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Names of the modules `path` imports anywhere (also inside functions), as written.

    Cached per file version (path, mtime, size), so an edited file is read again.
    """
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = path.parent.relative_to(root).parts
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(parts + ([node.module] if node.module else []))
            # `from pkg import name` may import the module pkg.name
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return tuple(names)


def module_files(module: str, root: Path | None = None) -> list[Path]:
    """The project source files `module`'s behaviour depends on: itself and every project module
    it imports, transitively, with the `__init__.py` of each package on the way."""
    root = root or PROJECT_ROOT
    seen: dict[Path, None] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name.split(".")[0] not in PROJECT_PACKAGES:
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # a package's __init__ runs before its modules
            path = _module_path(".".join(parts[:depth]), root)
            if path is None or path in seen:
                continue
            seen[path] = None
            stat = path.stat()
            pending += _imports_of(path, root, stat.st_mtime_ns, stat.st_size)
    return sorted(seen)


@functools.cache
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_digest(module: str, root: Path | None = None) -> str:
    """Hash of the source of `module` and of every project module it depends on.

    Cheap after the first call in a process: files are hashed once per version (mtime, size).
    """
    root = root or PROJECT_ROOT
    digest = hashlib.sha256()
    for path in module_files(module, root):
        stat = path.stat()
        digest.update(str(path.relative_to(root)).encode())
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


