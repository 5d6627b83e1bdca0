"""Benchmark: the sweep on threads vs a local Dask cluster, and sharded generation on 1 and 2 workers.

    flock -x /work/bench.lock nice -n 0 .venv/bin/python bench/scale_out.py [--num-samples 2000]
        [--epochs 2] [--generate 20000]

Each measurement is one `ocr-pipeline` command in a fresh results root (nothing from the cache),
timed from start to exit, so it includes Prefect's temporary server and the imports:
- sweep: 4 configurations of the default recipe (seeds 1,2 x learning rates 0.003,0.001), on
  threads (2 at a time, TensorFlow's own thread pools shared) and with --dask-workers 2 (two
  worker processes, one thread each, TensorFlow capped to 1 thread per training);
- generate: N captchas with --dask-workers 1 and 2 (sharded task runs), and the plain command
  (no Prefect: one task's process pool of 2) for reference; the folders' digests must agree.
For the sharded runs, `render_seconds` is the span from the first shard's start to the last
shard's end (log time stamps): the rendering itself, without the Prefect server's and the
cluster's start-up. Writes the numbers as JSON beside this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
CLI = str(Path(sys.executable).parent / "ocr-pipeline")

from bench.mnist_full import machine  # noqa: E402


def run(args: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    start = time.perf_counter()
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, result.stdout, result.stderr


def render_seconds(log: str) -> float | None:
    """From the first shard's start to the last shard's end, by the log's time stamps."""
    stamps = [line.split(" |", 1)[0] for line in log.splitlines()
              if "render_captcha_shard" in line and ("rendering" in line or "Finished" in line)]
    if not stamps:
        return None
    seconds = [int(h) * 3600 + int(m) * 60 + float(s)
               for h, m, s in (stamp.strip().split(":") for stamp in stamps)]
    return round(max(seconds) - min(seconds), 1)


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.png")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def sweep_rows(output: str) -> list[dict[str, str]]:
    """The table the sweep command prints: header line, then one line per configuration."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("configuration"))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = []
    for line in lines[start + 1:]:
        if not line.startswith(("crnn", "seed ")):
            break
        rows.append(dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=False)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--generate", type=int, default=20000)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "OCR_PIPELINE_RESULTS")}
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "sweep": {},
                    "generate": {}}
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        root = Path(tmp)
        if not args.skip_sweep:
            sweep = ["sweep", "--num-samples", str(args.num_samples), "--epochs", str(args.epochs),
                     "--seeds", "1,2", "--learning-rates", "0.003,0.001", "--min-val-accuracy", "0"]
            for name, flags in {"threads": ["--max-workers", "2"],
                                "dask-workers-2": ["--dask-workers", "2"]}.items():
                home = root / f"prefect-{name}"
                seconds, output, _ = run([*sweep, *flags, "--results-dir", str(root / name)],
                                      env | {"PREFECT_HOME": str(home)})
                report["sweep"][name] = {"seconds": round(seconds, 1), "rows": sweep_rows(output)}
                print(f"sweep {name}: {seconds:.1f} s", flush=True)
        if not args.skip_generate:
            for name, flags in {"plain (process pool of 2)": [],
                                "dask-workers-1": ["--dask-workers", "1"],
                                "dask-workers-2": ["--dask-workers", "2"]}.items():
                folder = root / f"generated-{name.split(' ')[0]}"
                seconds, _, log = run(["generate", "--count", str(args.generate), "--seed", "9",
                                  *flags, str(folder)],
                                 env | {"PREFECT_HOME": str(root / f"prefect-gen-{len(flags)}"),
                                        "OCR_PIPELINE_RESULTS": str(root / "gen-results")})
                report["generate"][name] = {"seconds": round(seconds, 1),
                                            "images_per_second": round(args.generate / seconds, 1),
                                            "render_seconds": render_seconds(log),
                                            "digest": folder_digest(folder)}
                print(f"generate {name}: {seconds:.1f} s", flush=True)
    report["generate_count"] = args.generate
    report["num_samples"], report["epochs"] = args.num_samples, args.epochs
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
