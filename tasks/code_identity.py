"""The code a step's key covers: the project source its function runs, and the versions of the
libraries that code imports.

A step's code is found by reading source (under `PROJECT_ROOT`), not by running it:

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

import ast
import functools
import hashlib
import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the project's packages; module sources are read from here."""

PROJECT_PACKAGES = ("ocr_core", "tasks")
"""Packages whose source goes into keys; anything else imported counts as a library."""

FUNCTION_GRAIN_PACKAGES = ("tasks",)
"""Packages whose functions are followed one by one; the others' modules count whole."""

CODE_ALSO_ATTRIBUTE = "__step_code_also__"
F = TypeVar("F", bound=Callable[..., Any])

LIBRARIES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "captcha": ("captcha",),
    "pillow": ("pillow",),
    "tensorflow-datasets": ("tensorflow-datasets",),
    "matplotlib": ("matplotlib",),
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
}
"""Top-level import name -> the `LIBRARIES` whose versions code importing it depends on."""


def _module_path(name: str, root: Path) -> Path | None:
    """The file of module `name` under `root` (a module or a package's __init__), if any."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk`, leaving out the bodies of `if TYPE_CHECKING:` (code that never runs)."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        if _is_type_checking(current):
            pending += current.orelse
        else:
            pending += ast.iter_child_nodes(current)


def _imported(node: ast.Import | ast.ImportFrom, package: tuple[str, ...]) -> dict[str, list[str]]:
    """The names an import statement binds, each with the modules it may refer to."""
    if isinstance(node, ast.Import):
        return {(alias.asname or alias.name.split(".")[0]): [alias.name] for alias in node.names}
    parts = list(package[: len(package) - node.level + 1]) if node.level else []
    module = ".".join(parts + ([node.module] if node.module else []))
    # `from pkg import name`: pkg.name is a module or a name in pkg; walking its prefixes covers pkg
    return {(alias.asname or alias.name): [f"{module}.{alias.name}"] for alias in node.names}


@functools.cache
def _parse(path: Path, mtime_ns: int, size: int) -> ast.Module:
    """The syntax tree of `path`, once per file version (an edited file is read again)."""
    return ast.parse(path.read_bytes(), filename=str(path))


def _tree(path: Path) -> ast.Module:
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


def _package_of(path: Path, root: Path) -> tuple[str, ...]:
    return path.parent.relative_to(root).parts if path.is_relative_to(root) else ()


DYNAMIC_IMPORTS = ("import_module", "find_spec", "__import__")
"""Calls that import the module named by their first argument (when it is a literal string)."""


def _imports_in(node: ast.AST, package: tuple[str, ...]) -> list[str]:
    """Every module an import anywhere in `node` may refer to, `importlib` calls included."""
    modules: list[str] = []
    for child in _walk(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            modules += [name for names in _imported(child, package).values() for name in names]
        elif (isinstance(child, ast.Call) and child.args
              and isinstance(child.args[0], ast.Constant) and isinstance(child.args[0].value, str)
              and getattr(child.func, "attr", getattr(child.func, "id", None)) in DYNAMIC_IMPORTS):
            modules.append(child.args[0].value)
    return modules


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
            path = _module_path(".".join(parts[:depth]), root)
            if path is None or path in files:
                continue
            files.add(path)
            pending += _imports_in(_tree(path), _package_of(path, root))
    return files, libraries


class _ModuleNames:
    """What each module-level name of a module is bound to: modules (imports) or statements."""

    def __init__(self, tree: ast.Module, package: tuple[str, ...]) -> None:
        self.imports: dict[str, list[str]] = {}
        self.definitions: dict[str, list[ast.AST]] = {}
        self.always: list[ast.AST] = []  # module-level code that runs on import
        self._read(tree.body, package)

    def _read(self, statements: list[ast.stmt], package: tuple[str, ...]) -> None:
        for statement in statements:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                for name, modules in _imported(statement, package).items():
                    self.imports.setdefault(name, []).extend(modules)
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.definitions.setdefault(statement.name, []).append(statement)
            elif isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.definitions.setdefault(name.id, []).append(statement)
            elif _is_type_checking(statement):
                self._read(statement.orelse, package)
            elif isinstance(statement, ast.If | ast.Try | ast.With):
                self.always.append(statement)
                self._read([*statement.body, *getattr(statement, "orelse", []),
                            *getattr(statement, "finalbody", []),
                            *(inner for handler in getattr(statement, "handlers", [])
                              for inner in handler.body)], package)
            elif not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
                self.always.append(statement)


@functools.cache
def _reached_modules(path: Path, mtime_ns: int, size: int, package: tuple[str, ...],
                     name: str) -> tuple[str, ...] | None:
    """The modules the module-level name `name` of `path` reaches: the imports in its code and
    those behind the module-level names it uses, following the module's definitions it uses.
    None when `name` is not bound at the module's top level."""
    names = _ModuleNames(_parse(path, mtime_ns, size), package)
    if name not in names.definitions:
        return tuple(names.imports[name]) if name in names.imports else None
    modules: list[str] = []
    seen: set[int] = set()
    pending = [*names.definitions[name], *names.always]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        modules += _imports_in(node, package)
        for child in _walk(node):
            if isinstance(child, ast.Name):
                modules += names.imports.get(child.id, [])
                pending += names.definitions.get(child.id, [])
    return tuple(modules)


def _source_of(module: str, root: Path) -> tuple[Path, Path] | None:
    """The file of `module` and the root its package is relative to; project modules are read
    under `root`, others where they were imported from."""
    if module.split(".")[0] in PROJECT_PACKAGES:
        path = _module_path(module, root)
        return (path, root) if path else None
    file = getattr(sys.modules.get(module), "__file__", None)
    return (Path(file), Path(file).parent) if file and file.endswith(".py") else None


def _definition_in(target: str, root: Path) -> tuple[str, str] | None:
    """(module, name) when `target` names a definition in a module walked at function grain."""
    module, _, name = target.rpartition(".")
    if (target.split(".")[0] in FUNCTION_GRAIN_PACKAGES and _module_path(target, root) is None
            and _module_path(module, root) is not None):
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
        package = _package_of(path, base)
        stat = path.stat()
        reached = None if name is None else _reached_modules(path, stat.st_mtime_ns, stat.st_size,
                                                            package, name)
        if reached is None:  # not found in the source: everything the module imports
            reached = tuple(_imports_in(_tree(path), package))
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


@functools.cache
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_digest(paths: Iterable[Path], root: Path | None = None) -> str:
    """Hash of the files' contents and names (relative to `root` where under it).

    Cheap after the first call in a process: files are hashed once per version (mtime, size).
    """
    root = root or PROJECT_ROOT
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


def code_identity(function: Callable[..., Any]) -> dict[str, Any]:
    """What a step key holds of `function`'s code: a digest of the source it runs and the
    versions of the libraries that source imports."""
    files, libraries = step_code(function)
    versions = library_versions()
    return {"code": files_digest(files), "libraries": {name: versions[name] for name in libraries}}
