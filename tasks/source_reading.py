"""What a module's source says it uses, read without running it: the modules it imports
(anywhere in it, `importlib` calls with a literal name included, `if TYPE_CHECKING:` blocks left
out) and the modules a top-level name of it reaches.

Syntax trees and answers are cached per file version (path, mtime, size): an edited file is
read again.
"""

from __future__ import annotations

import ast
import functools
import threading
from collections.abc import Iterator
from pathlib import Path


def module_path(name: str, root: Path) -> Path | None:
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


# CPython 3.11's AST builder keeps its recursion depth in state shared by threads: two parses at
# once can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905,
# seen with two served runs keying their steps at once). The lock keeps this module's parses apart;
# a parse that another library's (Prefect's, TensorFlow's autograph) disturbed is run again.
_PARSING = threading.Lock()
_PARSE_ATTEMPTS = 3


@functools.cache
def _parse(path: Path, mtime_ns: int, size: int) -> ast.Module:
    """The syntax tree of `path`, once per file version (an edited file is read again)."""
    source = path.read_bytes()
    attempts = _PARSE_ATTEMPTS
    while True:
        try:
            with _PARSING:
                return ast.parse(source, filename=str(path))
        except SystemError as error:
            attempts -= 1
            if attempts == 0 or "recursion depth mismatch" not in str(error):
                raise


@functools.cache
def _file_imports(path: Path, mtime_ns: int, size: int, package: tuple[str, ...]) -> tuple[str, ...]:
    """Every module an import anywhere in `path` may refer to, once per file version."""
    return tuple(_imports_in(_parse(path, mtime_ns, size), package))


def module_imports(path: Path, package: tuple[str, ...]) -> tuple[str, ...]:
    """Every module an import anywhere in `path` (a module of `package`) may refer to."""
    stat = path.stat()
    return _file_imports(path, stat.st_mtime_ns, stat.st_size, package)


def package_of(path: Path, root: Path) -> tuple[str, ...]:
    """The package of the module at `path` under `root`, as parts: ("ocr_core", "mnist")."""
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
def _reached(path: Path, mtime_ns: int, size: int, package: tuple[str, ...],
             name: str) -> tuple[str, ...] | None:
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


def reached_modules(path: Path, package: tuple[str, ...], name: str) -> tuple[str, ...] | None:
    """The modules the top-level name `name` of `path` reaches: the imports in its code and
    those behind the module-level names it uses, following the module's own definitions it
    uses. None when `name` is not bound at the module's top level."""
    stat = path.stat()
    return _reached(path, stat.st_mtime_ns, stat.st_size, package, name)
