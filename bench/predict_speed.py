"""Batch reading speed: images/s of reading captchas before (one by one) and after (tf.data + traced model).

    flock -x /work/bench.lock .venv/bin/python bench/predict_speed.py --out bench/predict_speed.json

Generates `--count` captchas once (seeded), takes `--model` or saves a tiny untrained bundle of the
`--recipe` (speed does not depend on the weights), then measures in this one process, start-up and
tracing excluded (each path reads a few batches before its clock starts):

- `one_by_one`: the old reading path (each PNG decoded eagerly, the model called
  eagerly per batch of 64, TensorFlow's CTC decoder), on `--baseline-count` images;
- `batched`: `ocr_core.captcha.inference.predict_files` on all images, per batch size;
- `model_only`: the bare model on images already decoded in memory: eager (batch 64, as before),
  traced with its weights as variables (batch 128), and as `predict_files` calls it (traced, weights
  frozen into the graph), per batch size;
- `decode_only`: the tf.data read + decode + resize pipeline alone;
- `cli` (with `--cli`): `ocr-pipeline predict` as a user runs it, images/s after start-up =
  (count - 100) / (time for count - time for 100 images).
- `flow` (with `--flow-count N`): `ocr-pipeline predict-batch` (the captcha-predict flow) on N
  other captchas, on threads and on a local Dask cluster of 2 workers: the whole command (Prefect's
  temporary server and the cluster included) and the flow's own time, as the command reports it.

Each figure is the median of `--repeats` runs. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from ocr_core.bundle.folder import Bundle, captcha_fields, load_bundle, save_bundle  # noqa: E402
from ocr_core.captcha.ctc import BLANK_INDEX  # noqa: E402
from ocr_core.captcha.inference import (  # noqa: E402
    compiled_model,
    expand_inputs,
    image_batches,
    predict_files,
)
from ocr_core.captcha.models import get_recipe  # noqa: E402
from ocr_core.captcha.pipeline import decode_image  # noqa: E402
from ocr_core.captcha.synthetic import generate_captchas  # noqa: E402

VOCABULARY = "2345678bcdefgmnpwxy"


def predict_one_by_one(bundle: Bundle, paths: list[Path], batch_size: int = 64) -> list[str]:
    """The old reading path, kept here as the baseline."""
    texts = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images = tf.stack([decode_image(tf.constant(p.read_bytes()), bundle.height, bundle.width)
                           for p in chunk])
        logits = bundle.model(images, training=False)
        log_probs = ops.log_softmax(ops.convert_to_tensor(logits, "float32"), axis=-1)
        decoded, _ = ops.ctc_decode(log_probs, ops.full((len(chunk),), log_probs.shape[1], "int32"),
                                    strategy="greedy", mask_index=BLANK_INDEX)
        texts += [bundle.vocabulary.decode(row) for row in ops.convert_to_numpy(decoded[0])]
    return texts


def rate(count: int, run, repeats: int) -> dict:
    """Median images/s of `run()` over `repeats` timed calls, and the CPU time per image.

    CPU microseconds per image (this process, all threads) say what a path costs even when other
    work shares the cores; images/s is what a user waits for.
    """
    seconds, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"images": count, "seconds": [round(s, 3) for s in seconds],
            "images_per_second": round(count / statistics.median(seconds), 1),
            "cpu_us_per_image": round(1e6 * statistics.median(cpu) / count)}


def tiny_bundle(path: Path, recipe_name: str) -> Path:
    recipe = get_recipe(recipe_name)
    return save_bundle(path, recipe.build_model(len(VOCABULARY) + 1),
                       captcha_fields(VOCABULARY, recipe.height, recipe.width), recipe=recipe.name,
                       training_data_sha256="0", params={}, history={})


def cli_rate(model: Path, folder: Path, paths: list[Path], work: Path, repeats: int) -> dict:
    """`ocr-pipeline predict` end to end; start-up removed by differencing with a 100-image run."""
    small = work / "cli-100"
    small.mkdir(exist_ok=True)
    for path in paths[:100]:
        shutil.copy(path, small / path.name)
    command = [str(Path(sys.executable).parent / "ocr-pipeline"), "predict", "--model", str(model)]

    def seconds(target: Path) -> float:
        start = time.perf_counter()
        subprocess.run([*command, str(target)], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    full = statistics.median(seconds(folder) for _ in range(repeats))
    start_up = statistics.median(seconds(small) for _ in range(repeats))
    return {"seconds_all": round(full, 2), "seconds_100": round(start_up, 2),
            "images_per_second_after_start_up": round((len(paths) - 100) / (full - start_up), 1)}


def flow_rates(model: Path, folder: Path, count: int, work: Path, shard_size: int) -> dict:
    """`ocr-pipeline predict-batch` on threads and on 2 local Dask workers, each once."""
    results = {}
    for name, flags in {"threads": [], "dask-workers-2": ["--dask-workers", "2"]}.items():
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env |= {"PREFECT_HOME": str(work / f"prefect-{name}"),
                "OCR_PIPELINE_RESULTS": str(work / f"results-{name}")}
        output = work / f"predictions-{name}.csv"
        command = [str(Path(sys.executable).parent / "ocr-pipeline"), "predict-batch", "--model",
                   str(model), "--output", str(output), "--shard-size", str(shard_size), *flags,
                   str(folder)]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
        found = re.search(r"wrote (\d+) predictions \((\d+) shards.* in ([0-9.]+) s", done.stderr)
        assert found and int(found[1]) == count, done.stderr[-2000:]
        flow_seconds = float(found[3])
        workers = [line.strip() for line in done.stderr.splitlines() if " shards, " in line]
        results[name] = {"seconds_command": round(seconds, 1), "seconds_flow": flow_seconds,
                         "shards": int(found[2]), "workers": workers,
                         "images_per_second_command": round(count / seconds, 1),
                         "images_per_second_flow": round(count / flow_seconds, 1)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--baseline-count", type=int, default=500)
    parser.add_argument("--batch-sizes", default="64,128,256")
    parser.add_argument("--recipe", default="crnn", help="recipe of the tiny bundle (no --model)")
    parser.add_argument("--model", type=Path, help="a bundle to use instead of a tiny one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--intra-op-threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--inter-op-threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--cli", action="store_true", help="also time `ocr-pipeline predict`")
    parser.add_argument("--work", type=Path, help="where captchas go (default: a temporary folder)")
    parser.add_argument("--flow-count", type=int, default=0,
                        help="also time the captcha-predict flow on this many other captchas")
    parser.add_argument("--shard-size", type=int, default=5000, help="shard size of the flow runs")
    parser.add_argument("--out", type=Path, default=Path("bench/predict_speed.json"))
    args = parser.parse_args()
    if args.intra_op_threads:  # before any op runs; 0 keeps TensorFlow's default
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    work = args.work or Path(tempfile.mkdtemp(prefix="predict-speed-"))
    folder = work / f"captchas-{args.count}-{args.seed}"
    if not folder.is_dir():
        generate_captchas(folder, args.count, args.seed, workers=min(2, os.cpu_count() or 1))
    model_path = args.model or tiny_bundle(work / f"bundle-{args.recipe}", args.recipe)
    bundle = load_bundle(model_path)
    paths = expand_inputs([folder])
    load_at_start = round(os.getloadavg()[0], 2)  # other work on the machine, for the record
    baseline = paths[: args.baseline_count]
    warm = paths[:256]

    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "python": platform.python_version(), "tensorflow": tf.__version__},
                     "count": len(paths), "seed": args.seed, "model": str(model_path),
                     "input": [bundle.width, bundle.height], "repeats": args.repeats,
                     "threads": {"intra_op": args.intra_op_threads, "inter_op": args.inter_op_threads}}

    predict_one_by_one(bundle, warm[:64])
    results["one_by_one"] = rate(len(baseline), lambda: predict_one_by_one(bundle, baseline),
                                 args.repeats)
    assert predict_one_by_one(bundle, baseline) == [p.text for p in predict_files(bundle, baseline)]

    results["batched"] = {}
    for batch_size in batch_sizes:
        predict_files(bundle, warm, batch_size=batch_size)
        results["batched"][batch_size] = rate(
            len(paths), lambda b=batch_size: predict_files(bundle, paths, batch_size=b), args.repeats)

    def decode_all(batch_size: int) -> np.ndarray:
        return np.concatenate([b.numpy() for b in image_batches(paths, bundle.height, bundle.width,
                                                                 batch_size)])

    results["decode_only"] = rate(len(paths), lambda: decode_all(128), args.repeats)

    images = decode_all(128)  # (count, width, height, 1)
    traced = compiled_model(bundle.model)
    results["model_only"] = {"eager_64": None, "traced": {}}

    def eager(batch_size: int) -> None:
        for start in range(0, len(images), batch_size):
            bundle.model(images[start : start + batch_size], training=False).numpy()

    def call_traced(batch_size: int) -> None:
        for start in range(0, len(images), batch_size):
            traced(images[start : start + batch_size]).numpy()

    eager(64)
    results["model_only"]["eager_64"] = rate(len(images), lambda: eager(64), args.repeats)
    spec = tf.TensorSpec((None, bundle.width, bundle.height, 1), tf.float32)
    unfrozen = tf.function(lambda x: bundle.model([x], training=False), input_signature=[spec])

    def call_unfrozen(batch_size: int) -> None:
        for start in range(0, len(images), batch_size):
            unfrozen(images[start : start + batch_size]).numpy()

    call_unfrozen(128)
    results["model_only"]["traced_unfrozen_128"] = rate(len(images), lambda: call_unfrozen(128),
                                                        args.repeats)
    for batch_size in batch_sizes:
        call_traced(batch_size)
        results["model_only"]["traced"][batch_size] = rate(
            len(images), lambda b=batch_size: call_traced(b), args.repeats)

    results["load_average_1min"] = {"start": load_at_start, "end": round(os.getloadavg()[0], 2)}
    if args.cli:
        results["cli"] = cli_rate(model_path, folder, paths, work, args.repeats)
    if args.flow_count:
        flow_folder = work / f"captchas-{args.flow_count}-{args.seed + 1}"
        if not flow_folder.is_dir():
            generate_captchas(flow_folder, args.flow_count, args.seed + 1,
                              workers=min(2, os.cpu_count() or 1))
        results["flow"] = flow_rates(model_path, flow_folder, args.flow_count, work,
                                     args.shard_size)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
