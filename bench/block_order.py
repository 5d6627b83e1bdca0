"""The crnn recipe's conv blocks: conv-norm-ReLU-pool against conv-pool-norm-ReLU, and Keras's
batch norm against the fused one, on the CPU.

Max-pooling commutes with ReLU and with a batch norm of positive scale, so pooling first computes
nearly the same function while normalising a quarter (blocks 1-2) or half (blocks 3-4) of the
values: batch norm in Keras 3 is unfused, about a fifth of a training step here. The product's
blocks train through TensorFlow's fused kernel (`ocr_core.training.batch_norm`); the `keras-`
variants put Keras's layer back (rows before it have no `batch_norm` field: Keras's). Every run trains
on the main job's data (30,000 captchas of seed 42, split by content hash as the flow splits them)
through the product's training code and plan, and is read on 5,000 development captchas of seed
7001 (the H200 recipe study's development set; the test split and unseen seeds stay untouched).
Runs of one training seed share initial weights where the layers match, dropout and shuffle
order, so differences are paired. Cost is CPU seconds of training (user + system), not wall time.

    nice -n 10 .venv/bin/python bench/block_order.py --variant pool-first-3 --seed 1 \\
        --out bench/block_order.jsonl

One run per process (each appends a JSON line); run them one at a time.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.main_job_recipes import prepare_splits  # noqa: E402

# name -> (pool before batch norm, CTC steps per conv column, epochs, fused batch norm)
VARIANTS: dict[str, tuple[bool, int, int, bool]] = {
    "norm-first-2": (False, 1, 2, True),
    "norm-first-3": (False, 1, 3, True),  # the main job's recipe
    "pool-first-2": (True, 1, 2, True),
    "pool-first-3": (True, 1, 3, True),
    "steps-x2-2": (False, 2, 2, True),  # 64 CTC steps: each conv column read twice by the BiGRU
    "keras-norm-first-2": (False, 1, 2, False),
    "keras-norm-first-3": (False, 1, 3, False),
}
SEEDS = {"train": 42, "development": 7001}
COUNTS = {"train": 30_000, "development": 5_000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--seed", type=int, default=42, help="training seed (weights, shuffle)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/block-order"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    import keras
    import tensorflow as tf

    from ocr_core.captcha import models
    from ocr_core.captcha.pipeline import load_split
    from ocr_core.captcha.training import plan_training, read_split, train_captcha_model
    from ocr_core.training.batch_norm import with_keras_batch_norm

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pool_first, time_upsampling, epochs, fused = VARIANTS[args.variant]
    base = models.get_recipe("crnn")
    splits, vocabulary, folders = prepare_splits(args.work, COUNTS, SEEDS, base.width, base.height)

    def build(width: int, height: int, classes: int) -> keras.Model:
        model = models.build_crnn(width, height, classes, pool_first=pool_first)
        if not fused:
            model = with_keras_batch_norm(model)
        if time_upsampling == 1:
            return model
        # The same layers, each step of the conv features repeated before the BiGRU.
        recurrent = next(layer for layer in model.layers
                         if isinstance(layer, keras.layers.Bidirectional))
        x = keras.layers.UpSampling1D(time_upsampling)(recurrent.input)
        x = model.get_layer("logits")(recurrent(x))
        return keras.Model(model.input, x, name="crnn_steps_x2")

    recipe = dataclasses.replace(base, build=build)
    plan = plan_training(len(splits["train"]), recipe, epochs=epochs)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    result = train_captcha_model(
        recipe, vocabulary,
        load_split(folders["train"], plan.batch_size, shuffle=True, seed=args.seed),
        load_split(folders["validation"], plan.batch_size), plan=plan, seed=args.seed)
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    reading = read_split(result.model, load_split(folders["development"], 256), vocabulary)
    correct = sum(p == t for p, t in zip(reading.predictions, reading.truths, strict=True))
    row = {"variant": args.variant, "pool_first": pool_first,
           "time_upsampling": time_upsampling, "batch_norm": "fused" if fused else "keras",
           "seed": args.seed,
           "plan": dataclasses.asdict(plan), "train_images": len(splits["train"]),
           "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),
           "kept_epoch": result.best_epoch, "epochs_run": result.epochs_run,
           "development_correct": correct, "development_count": len(reading.truths),
           "history": {k: [round(float(v), 5) for v in values]
                       for k, values in result.history.items()},
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                      f"load {os.getloadavg()[0]:.1f}",
           "tensorflow": tf.__version__}
    logging.info("%s seed %d: %d/%d development, %.0f CPU s", args.variant, args.seed, correct,
                 len(reading.truths), cpu)
    if args.out:
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
