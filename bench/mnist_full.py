"""Benchmark: the three seed models on the full real MNIST (local IDX copy).

    flock -x /work/cpu.lock .venv/bin/python bench/mnist_full.py [--epochs 20] [--patience 3]

Trains with max_workers=1 (default) so each model's wall time is its own, in a fresh results root
(no cache hits); --max-workers 2 measures the flow with trainings side by side. Prints a Markdown
table for BENCHMARKS.md and writes the numbers as JSON beside this file. Skips (exit 0) where
../shared/datasets/mnist is absent.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
DATASET = PROJECT_ROOT.parent / "shared" / "datasets" / "mnist"
TARGETS = {"dense": 0.975, "simple_cnn": 0.989, "larger_cnn": 0.990}


def machine() -> str:
    """CPU model and count, OS and library versions."""
    import os

    import keras
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpus} x {cpu}, no GPU; {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-workers", type=int, default=1)
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="default: a fresh temporary folder (so nothing comes from the cache)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    if not (DATASET / "train-images-idx3-ubyte.gz").is_file():
        print(f"skipped: real MNIST not found at {DATASET}")
        return 0

    from flows.environment import prepare_environment
    from ocr_core.config import MnistParams

    results_dir = args.results_dir or Path(tempfile.mkdtemp(prefix="mnist-bench-"))
    params = MnistParams(source="local", mnist_path=DATASET, epochs=args.epochs,
                         patience=args.patience, seed=args.seed,
                         max_workers=args.max_workers,
                         results_dir=results_dir)
    prepare_environment()
    from flows.mnist import mnist

    start = time.perf_counter()
    summary = mnist(params)
    flow_seconds = time.perf_counter() - start
    report = {"machine": machine(), "params": params.model_dump(mode="json"),
              "flow_seconds": round(flow_seconds, 1), "rows": summary.rows}
    args.output.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\nMachine: {report['machine']}")
    print(f"Settings: up to {args.epochs} epochs, patience {args.patience} on validation loss "
          f"(10% of the training images), batch 128, seed {args.seed}, "
          f"{args.max_workers} training(s) at a time.\n")
    print("| model | parameters | epochs (best / run) | test accuracy | error % | target | "
          "train s |")
    print("|---|---|---|---|---|---|---|")
    met = True
    for row in summary.rows:
        target = TARGETS[row["model"]]
        ok = row["accuracy"] >= target
        met &= ok
        print(f"| {row['model']} | {row['parameters']:,} | {row['epochs']} | "
              f"{100 * row['accuracy']:.2f}% | {row['error %']:.2f} | >= {100 * target:.1f}% "
              f"{'met' if ok else 'MISSED'} | {row['train seconds']:.0f} |")
    print(f"\nWhole flow (Prefect start, load, plots, trainings, evaluations): {flow_seconds:.0f} s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
