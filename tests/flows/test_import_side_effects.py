"""Importing the project changes nothing in the process: no environment writes, no patching."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

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
