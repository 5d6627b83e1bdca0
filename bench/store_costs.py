"""What a main-job run costs on an object store: requests by kind, bytes stored and fetched, time.

    .venv/bin/python bench/store_costs.py --out bench/store_costs.json            # the main job
    .venv/bin/python bench/store_costs.py --num-samples 2000 --epochs 2 --out ...  # smaller

Starts an S3 API server (moto_server) on 127.0.0.1, runs `ocr-pipeline captcha` with
`--results-dir s3://bench/ocr` from a fresh folder, HOME and scratch cache, then the same command
from another fresh folder, HOME and scratch (a second machine: every step served from the store),
and, with `--local`, the same first run on a local results root. Requests are counted from the server's
access log (one line per HTTP request); bytes stored are the bucket's object sizes, bytes fetched
the scratch cache's size after the second run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.s3_server import free_port  # noqa: E402

REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP')


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def machine(work: Path, name: str, base: dict[str, str]) -> tuple[dict[str, str], Path]:
    home = work / name
    (home / "work").mkdir(parents=True)
    return base | {"HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
                   "OCR_PIPELINE_SCRATCH": str(home / "scratch")}, home


def run(env: dict[str, str], cwd: Path, args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.cli", "captcha", *args], env=env,
                          cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout + done.stderr


def requests_in(log: Path, start: int) -> dict[str, int]:
    text = log.read_text()[start:]
    kinds = collections.Counter()
    for method, path in REQUEST.findall(text):
        listing = method == "GET" and ("list-type" in path or "prefix=" in path)
        kinds["LIST" if listing else method] += 1
    return dict(kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "store_costs.json")
    parser.add_argument("--local", action="store_true",
                        help="also time the first run on a local results root, for scale")
    args = parser.parse_args()
    flags = [*(["--num-samples", str(args.num_samples)] if args.num_samples else []),
             *(["--epochs", str(args.epochs)] if args.epochs else [])]

    work = Path(tempfile.mkdtemp(prefix="store-costs-"))
    port = free_port()
    log = work / "moto.log"
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                               "127.0.0.1", "-p", str(port)], stdout=open(log, "w"),
                              stderr=subprocess.STDOUT)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OCR_"))} | {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(PROJECT)}
    try:
        time.sleep(3)
        import boto3

        boto3.client("s3", endpoint_url=base["AWS_ENDPOINT_URL_S3"], aws_access_key_id="bench",
                     aws_secret_access_key="bench", region_name="us-east-1").create_bucket(
                         Bucket="bench")
        results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or
                               platform.machine(), "python": platform.python_version()},
                   "flags": flags}
        for name in ("first", "second"):
            env, home = machine(work, name, base)
            mark = len(log.read_text())
            seconds, output = run(env, home / "work", [*flags, "--results-dir", "s3://bench/ocr"])
            results[name] = {"seconds": round(seconds, 1), "requests": requests_in(log, mark),
                             "scratch_bytes": size_of(home / "scratch"),
                             "cached_steps": output.count("Cached(type=COMPLETED)"),
                             "working_folder_entries": len(os.listdir(home / "work"))}
        stored = boto3.resource("s3", endpoint_url=base["AWS_ENDPOINT_URL_S3"],
                                aws_access_key_id="bench", aws_secret_access_key="bench",
                                region_name="us-east-1").Bucket("bench").objects.all()
        objects = list(stored)
        results["stored"] = {"objects": len(objects), "bytes": sum(o.size for o in objects)}
        if args.local:
            env, home = machine(work, "local", base)
            seconds, _ = run(env, home / "work", [*flags, "--results-dir", str(home / "results")])
            results["local_first"] = {"seconds": round(seconds, 1),
                                      "bytes": size_of(home / "results")}
    finally:
        server.terminate()
        server.wait()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
