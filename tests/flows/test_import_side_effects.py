"""Importing the project changes nothing in the process: no environment writes, no patching;
and the CLI loads no TensorFlow before it quiets TensorFlow's start-up lines."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocr_core.registry import Registry
from tests.flows.test_models_cli import registry  # noqa: F401  (a fixture)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("ocr-pipeline")
# A `-X importtime` row for the tensorflow package: it was imported while stderr was open, i.e.
# not through flows.environment.import_tensorflow_quietly, which sends that import's stderr away.
LOUD_TENSORFLOW_IMPORT = re.compile(r"^import time:.*\|\s+tensorflow$", re.MULTILINE)
# TensorFlow's C++ start-up lines (absl's notice, then I/W/E/F + MMDD or 0000 log records).
TENSORFLOW_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} \d\d:)",
                                 re.MULTILINE)

SCRIPT = textwrap.dedent("""
    import importlib, json, os, pkgutil, sys
    import prefect, prefect.cache_policies, prefect.context, prefect.filesystems, prefect.results
    import prefect.main, prefect.settings, prefect.task_engine, prefect.task_runners  # Prefect set up
    import keras, tensorflow  # they set variables of their own when imported: not ours to check

    def snapshot():
        found = {}
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] != "prefect" or module is None:
                continue
            for attribute, value in list(vars(module).items()):
                if type(value).__name__ == "module" or attribute.startswith("__"):
                    continue  # a submodule imported later sets itself on its package
                contents = sorted(map(repr, value)) if isinstance(value, dict | list | set) else ""
                found[f"{name}.{attribute}"] = [id(value), contents]
        return found

    environ, before = dict(os.environ), snapshot()
    import tasks, flows, ocr_core
    for package in (tasks, flows, ocr_core):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    after = snapshot()
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    removed = sorted(k for k in before if k not in after)
    env = sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k))
    print(json.dumps({"prefect_changed": changed + removed, "environment_changed": env}))
""")


def test_importing_tasks_flows_and_ocr_core_changes_no_global_state():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TF_"))}
    process = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report == {"prefect_changed": [], "environment_changed": []}


def _without_tensorflow_settings() -> dict[str, str]:
    """This environment without TF_* variables (tests/conftest.py quiets TensorFlow itself)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TF_")}


def test_importing_the_cli_loads_neither_tensorflow_nor_keras():
    code = ("import sys, flows.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))")
    process = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT,
                             env=_without_tensorflow_settings(), capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", [("--help",), ("models", "list"), ("models", "show", "v1")])
def test_cheap_commands_print_no_tensorflow_start_up_lines(command, registry: Registry):  # noqa: F811
    results = () if command == ("--help",) else ("--results-dir", registry.root.url)
    env = _without_tensorflow_settings() | {"PYTHONPROFILEIMPORTTIME": "1"}
    process = subprocess.run([str(CLI), *command, *results], cwd=PROJECT_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr[-3000:]
    loud = LOUD_TENSORFLOW_IMPORT.findall(process.stderr)
    assert not loud, "tensorflow was imported before the CLI quieted it"
    assert not TENSORFLOW_LOG_LINE.findall(process.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("command", [("predict",), ("evaluate",),
                                     ("review", "--below", "0.5", "--review-dir", "REVIEW")])
def test_commands_that_read_images_print_no_tensorflow_start_up_lines(
    command, registry: Registry, captcha_dir, tmp_path  # noqa: F811
):
    command = tuple(str(tmp_path / "review") if part == "REVIEW" else part for part in command)
    env = _without_tensorflow_settings() | {"PYTHONPROFILEIMPORTTIME": "1"}
    process = subprocess.run(
        [str(CLI), *command, "--results-dir", registry.root.url, str(captcha_dir)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr[-3000:]
    assert process.stdout  # it read the images with the champion
    assert not LOUD_TENSORFLOW_IMPORT.findall(process.stderr), \
        "tensorflow was imported before the CLI quieted it"
    assert not TENSORFLOW_LOG_LINE.findall(process.stderr)
