"""Every export reads what `predict` reads, and how fast: 1,000 generated captchas of an unseen
seed read by `predict`, the SavedModel (plain TensorFlow), ONNX Runtime and LiteRT, at batch 1
and 64, in one run.

    .venv/bin/python bench/export_equivalence.py --model ocr-results/models/crnn-<key> \\
        --out bench/export_equivalence.json

The three exports are read in fresh processes that cannot import this project or Keras
(`export_readers.py`); the run fails unless all of them read every image as `predict` does.
Images/s count from PNG bytes to text, after one warm-up batch.
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

PROJECT = Path(__file__).resolve().parents[1]
READERS = PROJECT / "bench" / "export_readers.py"
BATCH_SIZES = (1, 64)


def read_with_export(kind: str, path: Path, batch_size: int, images: list[Path]) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-I", str(READERS), kind, str(path), str(batch_size),
                           *map(str, images)], capture_output=True, text=True, env=environment)
    if done.returncode:
        sys.exit(f"{kind} at batch {batch_size} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=31337, help="not 42 (training), not 2024")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "export_equivalence.json")
    args = parser.parse_args()

    sys.path.insert(0, str(PROJECT))
    from flows.environment import import_tensorflow_quietly

    import_tensorflow_quietly()
    from ocr_core.bundle.folder import load_bundle
    from ocr_core.captcha.inference import predict_files
    from ocr_core.captcha.synthetic import generate_captchas
    from ocr_core.export import export_bundle

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    images = sorted(generate_captchas(work / "captchas", args.count, args.seed, workers=2))
    exports, export_seconds = {}, {}
    for name, format_name, suffix, batch in (
            ("saved_model", "saved_model", "", 1), ("onnx", "onnx", ".onnx", 1),
            ("litert-1", "litert", ".tflite", 1), ("litert-64", "litert", ".tflite", 64)):
        start = time.perf_counter()
        exports[name] = export_bundle(args.model, format_name, work / f"{name}{suffix}",
                                      batch_size=batch)
        export_seconds[name] = round(time.perf_counter() - start, 1)
    bundle = load_bundle(args.model, kind="captcha")
    results: dict[str, dict[int, dict]] = {"predict": {}, "saved_model": {}, "onnx": {},
                                           "litert": {}}
    for batch_size in BATCH_SIZES:
        predict_files(bundle, images[:batch_size], batch_size=batch_size)  # warm-up
        start = time.perf_counter()
        predictions = predict_files(bundle, images, batch_size=batch_size)
        results["predict"][batch_size] = {"texts": [p.text for p in predictions],
                                          "seconds": time.perf_counter() - start}
        results["saved_model"][batch_size] = read_with_export(
            "saved_model", exports["saved_model"], batch_size, images)
        results["onnx"][batch_size] = read_with_export("onnx", exports["onnx"], batch_size, images)
        results["litert"][batch_size] = read_with_export(
            "litert", exports[f"litert-{batch_size}"], batch_size, images)
    reference = results["predict"][1]["texts"]
    labels = [path.stem for path in images]
    differences = {f"{way} batch {b}": sum(t != r for t, r in zip(run["texts"], reference,
                                                                  strict=True))
                   for way, by_batch in results.items() for b, run in by_batch.items()}
    report = {
        "benchmark": "export_equivalence", "model": str(args.model), "recipe": bundle.recipe,
        "images": args.count, "seed": args.seed,
        "sequence_accuracy_of_predict": sum(t == label for t, label in zip(reference, labels, strict=True))
        / len(labels),
        "texts_differing_from_predict_batch_1": differences,
        "images_per_second": {way: {str(b): round(args.count / run["seconds"], 1)
                                    for b, run in by_batch.items()}
                              for way, by_batch in results.items()},
        "export_seconds": export_seconds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "python": sys.version.split()[0],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if any(differences.values()):
        sys.exit(f"texts differ from predict's: {differences}")


if __name__ == "__main__":
    main()
