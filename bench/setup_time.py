"""Set-up time (`make .venv/.installed`) of fresh clones of some commits, taken in turns.

    python3 bench/setup_time.py --commits fb2c81f HEAD --runs 2 --out bench/setup_time.json

Each run clones this repository at the commit into a new folder and times the make target (pip
from the configured index); the commits alternate, so a busy spell of the machine does not fall
on one side only. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def time_setup(commit: str, work: Path) -> dict:
    clone = work / f"clone-{commit}"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(["make", ".venv/.installed"], cwd=clone, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(clone)
    return {"commit": commit, "seconds": round(seconds, 1), "load_before": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", nargs="+", required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commits = [subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", c], check=True,
                              capture_output=True, text=True).stdout.strip() for c in args.commits]
    work = Path(tempfile.mkdtemp(prefix="setup-time-"))
    rows = []
    for _ in range(args.runs):
        for commit in commits:
            rows.append(time_setup(commit, work))
            print(json.dumps(rows[-1]), flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "runs": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
