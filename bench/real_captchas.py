"""Benchmark: the README's real-data command with no tuning flags, scored on real captchas it never saw.

The 936 shared captcha_images_v2 files are cut by content hash (`bench/real_captcha_levers.py`):
136 are held out, the other 800 are the folder given to

    ocr-pipeline captcha --source dir --data-dir <800 files>      (defaults, nothing tuned)

which splits them 80/10/10 itself. The model it prints is then read on the 136 held-out files
(`ocr-pipeline evaluate`), which no split of the run and no choice of a default ever saw, and on
300 generated captchas (the domain gap). Wall time is the command's, Prefect start-up included.
Skips (exit 0) where ../shared/datasets/captcha_images_v2 is absent. Run it alone on the machine:

    flock -x /work/bench.lock .venv/bin/python bench/real_captchas.py --out bench-real.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.real_captcha_levers import REAL_DATA, holdout_split  # noqa: E402

CLI = Path(sys.executable).with_name("ocr-pipeline")
GAP_SEED = 99_999
GAP_COUNT = 300


def _link_all(paths: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in paths:
        (folder / path.name).symlink_to(path)
    return folder


def _evaluate(model: str, folder: Path) -> dict:
    output = subprocess.run([str(CLI), "evaluate", "--model", model, "--json", str(folder)],
                            check=True, capture_output=True, text=True).stdout
    report = json.loads(output)
    return {"count": report["count"], "sequence_accuracy": report["sequence_accuracy"],
            "character_error_rate": report["character_error_rate"],
            "misreads": [(m["truth"], m["prediction"]) for m in report["misreads"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None,
                        help="Folder for the data links and results (default: a temporary one).")
    parser.add_argument("--out", type=Path, default=None, help="Write the numbers as JSON here.")
    parser.add_argument("flags", nargs="*", help="Extra flags for `ocr-pipeline captcha` "
                        "(none for the benchmark of the defaults).")
    args = parser.parse_args()
    if not REAL_DATA.is_dir():
        print(f"skipped: no real captcha dataset at {REAL_DATA}")
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-real-"))
    pool, holdout = holdout_split(REAL_DATA)
    train_dir = _link_all(pool, work / "pool")
    holdout_dir = _link_all(holdout, work / "holdout")
    command = [str(CLI), "captcha", "--source", "dir", "--data-dir", str(train_dir),
               "--results-dir", str(work / "results"), *args.flags]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
    if run.returncode != 0:
        return run.returncode
    model = next(line.split(":", 1)[1].strip() for line in run.stdout.splitlines()
                 if line.startswith("model:"))
    generated = work / f"generated-{GAP_SEED}"
    subprocess.run([str(CLI), "generate", "--count", str(GAP_COUNT), "--seed", str(GAP_SEED),
                    str(generated)], check=True, capture_output=True)
    bundle = Path(model)
    numbers = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "command": " ".join(command[1:]),
        "wall_seconds": round(seconds, 1),
        "params": json.loads((bundle / "params.json").read_text()),
        "epochs_run": len(json.loads((bundle / "history.json").read_text())["loss"]),
        "test_split": [line for line in run.stdout.splitlines() if line.startswith("test ")],
        "unseen_real": _evaluate(model, holdout_dir),
        "generated": _evaluate(model, generated),
        "model": model,
    }
    text = json.dumps(numbers, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
