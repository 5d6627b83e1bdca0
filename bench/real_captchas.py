"""Benchmark: train on the real captcha_images_v2 copy through the `dir` source, then measure the
domain gap by reading generated captchas with that model.

Numbers: wall time of the flow, sequence accuracy and CER on the held-out real test split (about
94 images, never trained on), and on 300 generated captchas of an unused seed. Skips (exit 0)
where ../shared/datasets/captcha_images_v2 is absent. Run it alone on the machine:

    flock -x /work/cpu.lock .venv/bin/python bench/real_captchas.py --out bench-real.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "datasets" / "captcha_images_v2"
GAP_SEED = 99_999
GAP_COUNT = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="Results root (default: a fresh temporary folder).")
    parser.add_argument("--out", type=Path, default=None, help="Write the numbers as JSON here.")
    args = parser.parse_args()
    if not REAL_DATA.is_dir():
        print(f"skipped: no real captcha dataset at {REAL_DATA}")
        return 0
    results_dir = args.results_dir or Path(tempfile.mkdtemp(prefix="bench-real-"))

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    from flows.environment import prepare_environment

    prepare_environment(results_dir, refresh=True)
    from flows.captcha_ocr import captcha_ocr
    from ocr_core.bundle import load_bundle
    from ocr_core.config import CaptchaParams
    from ocr_core.inference import expand_inputs, predict_files, score
    from ocr_core.synthetic import generate_captchas

    params = CaptchaParams(source="dir", data_dir=REAL_DATA, recipe="crnn", epochs=args.epochs,
                           patience=args.patience, batch_size=args.batch_size,
                           results_dir=results_dir)
    started = time.perf_counter()
    summary = captcha_ocr(params)
    flow_seconds = time.perf_counter() - started

    generated = generate_captchas(results_dir / f"generated-{GAP_SEED}", GAP_COUNT, GAP_SEED,
                                  workers=min(2, os.cpu_count() or 1))
    gap = score(predict_files(load_bundle(summary.model_path), expand_inputs(generated)))
    history = json.loads((summary.model_path / "history.json").read_text())
    validation = json.loads((summary.model_path / "metrics.json").read_text())["validation"]

    numbers = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "settings": {"recipe": "crnn", "epochs": args.epochs, "patience": args.patience,
                     "batch_size": args.batch_size, "augment": params.use_augmentation},
        "images": len(list(REAL_DATA.glob("*.png"))),
        "flow_wall_seconds": round(flow_seconds, 1),
        "real_test": {k: summary.metrics[k] for k in
                      ("count", "sequence_accuracy", "character_error_rate")},
        "generated": {"count": gap.count, "seed": GAP_SEED,
                      "sequence_accuracy": gap.sequence_accuracy,
                      "character_error_rate": gap.character_error_rate},
        "epochs_run": len(next(iter(history.values()))),
        "validation": validation,
        "model": str(summary.model_path),
    }
    text = json.dumps(numbers, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
