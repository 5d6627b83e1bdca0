"""What remote workers need: no task or library code changes process-wide state for the next
task (environment variables, Python's global random module), and the worker name is known."""

import re
import subprocess
import sys
from pathlib import Path

from tasks.workers import current_worker

ROOT = Path(__file__).resolve().parents[2]
SETS_ENVIRONMENT = re.compile(r"os\.environ\[[^\]]+\]\s*=|os\.environ\.(setdefault|update|pop)\(|"
                              r"os\.putenv\(|os\.unsetenv\(")
SEEDS_GLOBAL_RANDOM = re.compile(r"(?<![\w.])random\.seed\(|np\.random\.seed\(")


def _sources(*packages: str):
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_tasks_and_library_never_set_environment_variables():
    # Environment is set once per process, before Prefect and TF load (flows/environment.py,
    # the CLI); a task doing it would leak into every later task on the same worker.
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in _sources("tasks", "ocr_core")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if SETS_ENVIRONMENT.search(line)]
    assert offenders == []


def test_no_global_random_seeding_outside_training():
    # Generation draws from private seeded generators. The one process-global seed is
    # keras.utils.set_random_seed in ocr_core/captcha/training.py train_captcha_model(): it is why
    # concurrent trainings in one process (the thread runner) are not reproducible, and Dask workers run one
    # training per process at a time (docs/scale-out.md).
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in _sources("tasks", "ocr_core")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if SEEDS_GLOBAL_RANDOM.search(line)]
    assert offenders == []
    fit_source = (ROOT / "ocr_core" / "captcha" / "training.py").read_text()
    assert fit_source.count("set_random_seed") <= 1


def test_current_worker_outside_dask_names_host_and_process():
    import os
    import socket

    assert current_worker().startswith(f"{socket.gethostname()}:{os.getpid()}/")


def test_importing_the_library_and_tasks_leaves_tensorflow_threads_settable():
    # A Dask worker caps TensorFlow's threads in its first task (`configure_threads`); a module
    # that makes a tensor at import would start TF's runtime first and make the cap a no-op.
    modules = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for path in _sources("ocr_core", "tasks"))
    script = ("import importlib, sys, tensorflow as tf\n"
              "for name in sys.argv[1:]:\n"
              "    importlib.import_module(name)\n"
              "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
              "tf.config.threading.set_inter_op_parallelism_threads(1)\n")
    done = subprocess.run([sys.executable, "-c", script, *modules], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
