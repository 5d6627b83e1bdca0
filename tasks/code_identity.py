"""The code a step's key covers: the project source its function runs, and the versions of the
libraries that code imports.

A step's code is found by reading source (under `PROJECT_ROOT`, with `tasks.source_reading`),
not by running it:

- its task module's whole text, and the text of every `tasks` module it reaches;
- in `tasks` (thin wrappers), function by function: the imports in the step function's body,
  and the module-level names it uses, followed through the module's own helpers, classes and
  constants, and through `from tasks.x import name` into that function. So `tasks/mnist.py`
  importing `tasks.links` for its report task does not tie MNIST training to the downloader
  that `tasks.links` reaches through `ocr_core.config`;
- in `ocr_core`, module by module: a reached module counts whole, with every project module it
  imports anywhere (inside functions too, `importlib` calls with a literal name too),
  transitively, and each package's `__init__.py`. Imports under `if TYPE_CHECKING:` never run
  and are not followed;
- the code of the tasks a step declares with `includes_code_of` (a step that collects what
  other tasks wrote, like the rendered captchas).

It errs towards including: a module counts whole or not at all, and a step function its module's
source does not show at top level (one made inside a function) takes everything its module
imports. The libraries are the `LIBRARIES` imported anywhere in that code (`LIBRARY_IMPORTS`
says which imports bring which: keras brings TensorFlow and NumPy).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ocr_core.version import LIBRARY_IMPORTS, files_digest, library_versions
from tasks.source_reading import module_imports, module_path, package_of, reached_modules

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the project's packages; module sources are read from here."""

PROJECT_PACKAGES = ("ocr_core", "tasks")
"""Packages whose source goes into keys; anything else imported counts as a library."""

FUNCTION_GRAIN_PACKAGES = ("tasks",)
"""Packages whose functions are followed one by one; the others' modules count whole."""

CODE_ALSO_ATTRIBUTE = "__step_code_also__"
F = TypeVar("F", bound=Callable[..., Any])

def module_files(module: str, root: Path | None = None) -> list[Path]:
    """The project source files `module`'s behaviour depends on: itself and every project module
    it imports, transitively, with the `__init__.py` of each package on the way."""
    return sorted(_closure([module], root or PROJECT_ROOT)[0])


def _closure(modules: Iterable[str], root: Path) -> tuple[set[Path], set[str]]:
    """The project files `modules` depend on (module grain) and the top-level names of every
    library imported in them or named in `modules`."""
    files: set[Path] = set()
    libraries: set[str] = set()
    pending = list(modules)
    while pending:
        name = pending.pop()
        parts = name.split(".")
        if parts[0] not in PROJECT_PACKAGES:
            libraries.add(parts[0])
            continue
        for depth in range(1, len(parts) + 1):  # a package's __init__ runs before its modules
            path = module_path(".".join(parts[:depth]), root)
            if path is None or path in files:
                continue
            files.add(path)
            pending += module_imports(path, package_of(path, root))
    return files, libraries


def _source_of(module: str, root: Path) -> tuple[Path, Path] | None:
    """The file of `module` and the root its package is relative to; project modules are read
    under `root`, others where they were imported from."""
    if module.split(".")[0] in PROJECT_PACKAGES:
        path = module_path(module, root)
        return (path, root) if path else None
    file = getattr(sys.modules.get(module), "__file__", None)
    return (Path(file), Path(file).parent) if file and file.endswith(".py") else None


def _definition_in(target: str, root: Path) -> tuple[str, str] | None:
    """(module, name) when `target` names a definition in a module walked at function grain."""
    module, _, name = target.rpartition(".")
    if (target.split(".")[0] in FUNCTION_GRAIN_PACKAGES and module_path(target, root) is None
            and module_path(module, root) is not None):
        return module, name
    return None


def _step_functions(function: Callable[..., Any]) -> list[Callable[..., Any]]:
    function = inspect.unwrap(function)
    return [function, *(inspect.unwrap(getattr(other, "fn", other))
                        for other in getattr(function, CODE_ALSO_ATTRIBUTE, ()))]


def step_code(function: Callable[..., Any], root: Path | None = None) -> tuple[list[Path], list[str]]:
    """The source files `function`'s step runs (see the module's docstring) and the `LIBRARIES`
    that code imports, both sorted.

    Args:
        function: a task function (decorators are unwrapped), with the functions it declares
            with `includes_code_of`.
        root: the folder the project packages are read from (default `PROJECT_ROOT`).
    """
    root = root or PROJECT_ROOT
    files: set[Path] = set()
    modules: list[str] = []
    pending: list[tuple[str, str | None]] = [
        (f.__module__, None if "<locals>" in f.__qualname__ else f.__qualname__.split(".")[0])
        for f in _step_functions(function)]
    seen: set[tuple[str, str | None]] = set()
    while pending:
        unit = pending.pop()
        if unit in seen:
            continue
        seen.add(unit)
        module, name = unit
        source = _source_of(module, root)
        if source is None:
            modules.append(module)
            continue
        path, base = source
        package = package_of(path, base)
        reached = None if name is None else reached_modules(path, package, name)
        if reached is None:  # not found in the source: everything the module imports
            reached = module_imports(path, package)
        files.add(path)
        modules += [".".join(package)] if package else []  # its packages' __init__ run first
        for target in reached:
            definition = _definition_in(target, root)
            if definition is None:
                modules.append(target)
            else:
                pending.append(definition)
    closure, imported = _closure(modules, root)
    libraries = {library for name in imported for library in LIBRARY_IMPORTS.get(name, ())}
    return sorted(files | closure), sorted(libraries)


def includes_code_of(*functions: Callable[..., Any]) -> Callable[[F], F]:
    """Declare that a step's output also comes from `functions` run elsewhere (tasks the flow
    runs before it, whose output the step only collects): their code joins the step's."""

    def declare(function: F) -> F:
        setattr(function, CODE_ALSO_ATTRIBUTE, functions)
        return function

    return declare


def code_identity(function: Callable[..., Any]) -> dict[str, Any]:
    """What a step key holds of `function`'s code: a digest of the source it runs and the
    versions of the libraries that source imports."""
    files, libraries = step_code(function)
    versions = library_versions()
    return {"code": files_digest(files, PROJECT_ROOT),
            "libraries": {name: versions[name] for name in libraries}}
