"""Benchmark: levers for real captchas, each trained the same way on the same real images.

The 936 shared captcha_images_v2 files are cut once, by the sha256 of their bytes: the first 136
are a final hold-out that no lever is chosen on (read only with `--final`); the other 800 are cut
(seed 42) into 640 training, 80 validation (early stopping) and 80 development images, on which
the levers are compared. Per epoch it records images seen, seconds and validation accuracy (the
time-to-accuracy curves). Run it alone on the machine:

    flock -x /work/bench.lock .venv/bin/python bench/real_captcha_levers.py --variant default
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "datasets" / "captcha_images_v2"
HOLDOUT_COUNT = 136


def holdout_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(pool, final hold-out): the hold-out is the first HOLDOUT_COUNT files by content hash."""
    ranked = sorted(folder.glob("*.png"), key=lambda p: hashlib.sha256(p.read_bytes()).hexdigest())
    return ranked[HOLDOUT_COUNT:], ranked[:HOLDOUT_COUNT]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default", help="a name from VARIANTS")
    parser.add_argument("--final", action="store_true", help="also read the final hold-out")
    parser.add_argument("--out", type=Path, default=None, help="append the numbers (JSON line)")
    args = parser.parse_args()
    if not REAL_DATA.is_dir():
        print(f"skipped: no real captcha dataset at {REAL_DATA}")
        return 0
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ocr_core.bundle.folder import captcha_fields, load_bundle, save_bundle
    from ocr_core.captcha.ctc import Vocabulary
    from ocr_core.captcha.inference import predict_files, score
    from ocr_core.captcha.models import build_crnn, get_recipe
    from ocr_core.captcha.pipeline import load_split, save_split
    from ocr_core.captcha.training import plan_training, train_captcha_model
    from ocr_core.data import dataset as ds

    variant = VARIANTS[args.variant]
    pool, holdout = holdout_split(REAL_DATA)
    records = ds.index_images(pool)
    splits = ds.split_records(records, validation_fraction=0.1, test_fraction=0.1, seed=42)
    vocabulary = ds.build_vocabulary([r.label for r in records])
    chars = Vocabulary(vocabulary)
    recipe = get_recipe(variant.get("recipe", "crnn"))
    if "columns_per_step" in variant or "size" in variant:
        width, height = variant.get("size", (recipe.width, recipe.height))
        recipe = dataclasses.replace(recipe, width=width, height=height, build=functools.partial(
            build_crnn, columns_per_step=variant.get("columns_per_step", 4)))
    work = Path(tempfile.mkdtemp(prefix="levers-"))
    for name in ("train", "validation"):
        save_split(splits[name], chars, work / name, height=recipe.height, width=recipe.width,
                   max_label_length=5)
    plan = plan_training(len(splits["train"]), recipe, augment=variant.get("augment", True),
                         **variant.get("plan", {}))
    logging.info("%s: %s", args.variant, plan.describe(len(splits["train"])))
    started = time.perf_counter()
    result = train_captcha_model(recipe, chars,
                                 load_split(work / "train", plan.batch_size, shuffle=True,
                                            augment=variant.get("augment", True), seed=42),
                                 load_split(work / "validation", plan.batch_size), plan=plan, seed=42,
                                 learning_rate=variant.get("learning_rate"))
    seconds = time.perf_counter() - started
    bundle_path = save_bundle(work / "model", result.model,
                              captcha_fields(vocabulary, recipe.height, recipe.width),
                              recipe=recipe.name, training_data_sha256="bench", params={},
                              history=result.history)
    bundle = load_bundle(bundle_path)
    development = score(predict_files(bundle, [Path(r.path) for r in splits["test"]]))
    history = result.history
    n_train = len(splits["train"])
    numbers = {
        "variant": args.variant, "settings": variant,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "train_images": n_train, "train_seconds": round(seconds, 1),
        "epochs_run": len(history["loss"]), "best_epoch": result.best_epoch,
        "images_seen": n_train * len(history["loss"]),
        "images_per_second": round(n_train * len(history["loss"]) / seconds, 1),
        "development": {"count": development.count,
                        "sequence_accuracy": development.sequence_accuracy,
                        "character_error_rate": development.character_error_rate,
                        "misreads": [(m["truth"], m["prediction"]) for m in development.misreads]},
        "curve": [{"epoch": i + 1, "images_seen": n_train * (i + 1),
                   "seconds": round(sum(history["epoch_seconds"][: i + 1]), 1),
                   "val_sequence_accuracy": history["val_sequence_accuracy"][i]}
                  for i in range(len(history["loss"]))],
    }
    if args.final:
        final = score(predict_files(bundle, holdout))
        numbers["final_holdout"] = {"count": final.count,
                                    "sequence_accuracy": final.sequence_accuracy,
                                    "character_error_rate": final.character_error_rate}
    print(json.dumps({k: v for k, v in numbers.items() if k != "curve"}, indent=1))
    if args.out:
        with args.out.open("a") as handle:
            handle.write(json.dumps(numbers) + "\n")
    return 0


VARIANTS: dict[str, dict] = {
    # What bench/real_captchas.py ran before the training plan (its light in-model augmentation is gone;
    # this is the same length, batch and patience with the new augmentation).
    "before": {"plan": {"epochs": 80, "patience": 20, "batch_size": 16}},
    "default": {},
    "no-augment": {"augment": False},
    "steps-8": {"columns_per_step": 8},
    "size-200x48": {"size": (200, 48)},
    "half-length": {"plan": {"epochs": 125}},
    "double-length": {"plan": {"epochs": 500}},
}

if __name__ == "__main__":
    sys.exit(main())
