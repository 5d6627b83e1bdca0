"""The results root's size before and after `ocr-pipeline cache prune`, after an edit made new keys.

    .venv/bin/python bench/cache_prune.py --num-samples 2000 --epochs 2 --out bench/cache_prune.json

A run, then every file aged 10 days, then the same command from a copy of the source with an
edit to the model code (a new training key; the data steps are cache hits and so stay in use),
then `cache prune --older-than 7d` (dry run, then --yes). Sizes are `du`-like byte counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from flows.cli import main; sys.exit(main())"]


def size_of(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command[3:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "cache_prune.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cache-prune-"))
    root = work / "ocr-results"
    env = os.environ | {"PREFECT_HOME": str(work / "prefect-home"), "TF_CPP_MIN_LOG_LEVEL": "3",
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    edited = work / "edited"
    for package in ("ocr_core", "tasks", "flows"):
        shutil.copytree(PROJECT / package, edited / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    models = edited / "ocr_core" / "captcha" / "models.py"
    models.write_text(models.read_text().replace("layers.Dropout(0.2)", "layers.Dropout(0.25)"))

    captcha = [*CLI, "captcha", "--num-samples", str(args.num_samples), "--epochs",
               str(args.epochs), "--min-val-accuracy", "0", "--results-dir", str(root)]
    first_seconds, _ = run(captcha, env, PROJECT)
    past = time.time() - 10 * 86400
    for path in root.rglob("*"):
        os.utime(path, (past, past))
    second_seconds, _ = run(captcha, env | {"PYTHONPATH": str(edited)}, edited)
    before = size_of(root)
    _, listing = run([*CLI, "cache", "ls", "--results-dir", str(root)], env, PROJECT)
    _, dry_run = run([*CLI, "cache", "prune", "--older-than", "7d", "--results-dir", str(root)],
                     env, PROJECT)
    _, pruned = run([*CLI, "cache", "prune", "--older-than", "7d", "--yes", "--results-dir",
                     str(root)], env, PROJECT)
    after = size_of(root)
    result = {
        "num_samples": args.num_samples, "epochs": args.epochs,
        "first_run_seconds": round(first_seconds, 1),
        "edited_run_seconds": round(second_seconds, 1),
        "bytes_before_prune": before, "bytes_after_prune": after,
        "cache_ls": listing.splitlines(), "prune_dry_run": dry_run.splitlines(),
        "prune": pruned.splitlines(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
                   "shared with other sessions' tests",
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
