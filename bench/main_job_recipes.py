"""The main job's recipe: accuracy against cost for a few variants, on the main job's own data.

Every variant trains on the main job's data (20,000 generated captchas of seed 42, split by content
hash as the flow splits them, so 16,062 / 1,977 / 1,961), through the product's training code
(`ocr_core.captcha.training.train_captcha_model`: its plan, stopping rule and validation pass),
and is read on a development set of 1,000 captchas of seed 7001 (choosing) after every epoch.
The test split and unseen seeds are left for the final check of the chosen variant (the main job
itself, `bench/profile_main_job.py --unseen-count 1000`). Cost is CPU seconds (user + system of
this process) and images seen: wall time on a shared machine says little.

    nice -n 10 .venv/bin/python bench/main_job_recipes.py --variant today --out bench/main_job_recipes.jsonl
    nice -n 10 .venv/bin/python bench/main_job_recipes.py --variant small --out bench/main_job_recipes.jsonl

One variant per process (each appends a JSON line); run them one at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocr_core.captcha.ctc import Vocabulary

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (width, height, batch size, epochs, unrolled GRU, training images used)
VARIANTS: dict[str, dict] = {
    "today": {"size": (128, 32), "batch": 64, "epochs": 6},
    "today-b128-unroll": {"size": (128, 32), "batch": 128, "epochs": 6, "unroll": True},
    "small": {"size": (96, 24), "batch": 64, "epochs": 6},
    "small-b128-unroll": {"size": (96, 24), "batch": 128, "epochs": 6, "unroll": True},
    "small-b128-unroll-4ep": {"size": (96, 24), "batch": 128, "epochs": 4, "unroll": True},
    "small-b128-unroll-5ep": {"size": (96, 24), "batch": 128, "epochs": 5, "unroll": True},
    "mid-b128-unroll": {"size": (112, 28), "batch": 128, "epochs": 6, "unroll": True},
    "mid-b128-unroll-4ep": {"size": (112, 28), "batch": 128, "epochs": 4, "unroll": True},
    "today-b128-unroll-4ep": {"size": (128, 32), "batch": 128, "epochs": 4, "unroll": True},
    "today-b32-3ep": {"size": (128, 32), "batch": 32, "epochs": 3},
    "today-b32-4ep": {"size": (128, 32), "batch": 32, "epochs": 4},
    "today-b16-2ep": {"size": (128, 32), "batch": 16, "epochs": 2},
}
SEEDS = {"train": 42, "development": 7001}
COUNTS = {"train": 20_000, "development": 1_000}


def prepare_splits(work: Path, counts: dict[str, int], seeds: dict[str, int], width: int,
                   height: int) -> tuple[dict[str, list], Vocabulary, dict[str, Path]]:
    """Generate the `train` and `development` captchas once, split `train` as the flow does
    (content hash, seed 42), and save each split at `width` x `height` once: (records by split,
    vocabulary, saved folder by split)."""
    from ocr_core.captcha.ctc import Vocabulary
    from ocr_core.captcha.pipeline import save_split
    from ocr_core.captcha.synthetic import generate_captchas
    from ocr_core.data import dataset as ds

    images = {name: work / "images" / name for name in counts}
    for name, folder in images.items():
        if not folder.is_dir():
            generate_captchas(folder, counts[name], seeds[name], workers=2)
    records = ds.index_images(ds.list_pngs(images["train"]))
    splits = ds.split_records(records, validation_fraction=0.1, test_fraction=0.1, seed=42)
    splits["development"] = ds.index_images(ds.list_pngs(images["development"]))
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
    folders = {name: work / "splits" / f"{width}x{height}" / name for name in splits}
    for name, folder in folders.items():
        if not folder.exists():
            save_split(splits[name], vocabulary, folder, height=height, width=width,
                       max_label_length=5)
    return splits, vocabulary, folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/main-job-recipes"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    import keras
    import tensorflow as tf

    from ocr_core.captcha import models
    from ocr_core.captcha.pipeline import load_split
    from ocr_core.captcha.training import plan_training, read_split, train_captcha_model

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    variant = VARIANTS[args.variant]
    width, height = variant["size"]
    splits, vocabulary, folders = prepare_splits(args.work, COUNTS, SEEDS, width, height)

    def build(w: int, h: int, classes: int) -> keras.Model:
        model = models.build_crnn(w, h, classes)
        if variant.get("unroll"):
            for layer in model.layers:
                if isinstance(layer, keras.layers.Bidirectional):
                    layer.forward_layer.unroll = layer.backward_layer.unroll = True
        return model

    recipe = dataclasses.replace(models.get_recipe("crnn"), width=width, height=height,
                                 batch_size=variant["batch"], build=build)
    plan = plan_training(len(splits["train"]), recipe, epochs=variant["epochs"])
    development = load_split(folders["development"], 256)
    curve: list[dict] = []
    cpu_start, wall_start = time.process_time(), time.perf_counter()

    class ReadDevelopment(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            reading = read_split(self.model, development, vocabulary)
            correct = sum(p == t for p, t in zip(reading.predictions, reading.truths, strict=True))
            curve.append({"epoch": epoch + 1,
                          "cpu_seconds": round(time.process_time() - cpu_start, 1),
                          "development_correct": correct, **{k: round(float(v), 5) for k, v in
                                                             (logs or {}).items()}})
            logging.info("development: %d/%d", correct, len(reading.truths))

    result = train_captcha_model(
        recipe, vocabulary,
        load_split(folders["train"], plan.batch_size, shuffle=True, seed=42),
        load_split(folders["validation"], plan.batch_size), plan=plan, seed=42,
        callbacks=[ReadDevelopment()])
    cpu = time.process_time() - cpu_start
    kept = curve[result.best_epoch - 1]
    row = {"variant": args.variant, **{k: str(v) for k, v in variant.items()},
           "plan": dataclasses.asdict(plan), "train_images": len(splits["train"]),
           "images_seen": result.epochs_run * len(splits["train"]),
           "cpu_seconds": round(cpu, 1), "wall_seconds": round(time.perf_counter() - wall_start, 1),
           "kept_epoch": result.best_epoch, "because": result.kept_because,
           "development_correct": kept["development_correct"], "development_count": COUNTS[
               "development"], "curve": curve,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
           "tensorflow": tf.__version__}
    print(json.dumps(row))
    if args.out:
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
