"""Private attributes of Prefect, Keras and TensorFlow: used in one shim module, tested there."""

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ocr_core", "tasks", "flows", "deployments")
SHIM = PROJECT_ROOT / "ocr_core" / "compat.py"
LIBRARIES = ("prefect", "keras", "tensorflow")


def _sources() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((PROJECT_ROOT / package).rglob("*.py"))]


def _own_private_names(trees: list[ast.AST]) -> set[str]:
    """Private names the project defines itself (functions, classes, globals, attributes)."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return {name for name in names if name.startswith("_")}


def _private_uses(path: Path, tree: ast.AST, own: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__") and node.attr not in own:
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: .{node.attr}")
        modules = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                   else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for module in modules:
            parts = module.split(".")
            if parts[0] in LIBRARIES and (any(p.startswith("_") for p in parts)
                                          or module.startswith("tensorflow.python")):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: {module}")
    return found


def test_no_module_but_the_shim_touches_a_private_attribute_of_a_library():
    trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in _sources()}
    own = _own_private_names(list(trees.values()))
    found = [use for path, tree in trees.items() if path != SHIM
             for use in _private_uses(path, tree, own)]
    assert found == []


def test_the_scan_sees_a_private_use():
    tree = ast.parse("import prefect.results\nprefect.results._default_storages.clear()\n"
                     "from tensorflow.python.framework import convert_to_constants\n")
    assert len(_private_uses(SHIM, tree, own=set())) == 2


def test_the_shim_freezes_a_function_on_the_installed_tensorflow():
    """Fails on an upgrade that moves TensorFlow's private graph freezing."""
    import tensorflow as tf

    from ocr_core.compat import freeze_function

    weights = tf.Variable([[2.0], [3.0]])
    traced = tf.function(lambda x: tf.matmul(x, weights),
                         input_signature=[tf.TensorSpec((None, 2), tf.float32)])
    frozen = freeze_function(traced.get_concrete_function())
    assert frozen.variables == () or len(frozen.variables) == 0
    result = frozen(tf.constant([[1.0, 1.0]]))
    result = result[0] if isinstance(result, list | tuple) else result
    assert result.numpy().ravel().tolist() == pytest.approx([5.0])
