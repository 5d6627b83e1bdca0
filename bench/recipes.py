"""Compare the model recipes on the same generated captchas: speed and epochs/minutes to accuracy.

    .venv/bin/python bench/recipes.py --num-samples 4000 --minutes 10 --out bench/results-recipes

Each recipe trains on the same split (80/10/10) until its epoch count or the time budget runs out;
after every epoch the validation sequence accuracy is measured. Results: JSON + a markdown table.
Run it alone on the machine: timings are meaningless beside another training.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from ocr_core.captcha.ctc import Vocabulary  # noqa: E402
from ocr_core.captcha.models import get_recipe  # noqa: E402
from ocr_core.captcha.pipeline import load_split, save_split  # noqa: E402
from ocr_core.captcha.synthetic import generate_captchas  # noqa: E402
from ocr_core.captcha.training import TrainingPlan, train_captcha_model  # noqa: E402
from ocr_core.data import dataset as ds  # noqa: E402

THRESHOLDS = (0.5, 0.9, 0.95)


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch in which the budget ran out."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def first_reaching(history: dict, threshold: float) -> dict | None:
    elapsed = 0.0
    for epoch, (accuracy, seconds) in enumerate(
            zip(history["val_sequence_accuracy"], history["epoch_seconds"], strict=True), 1):
        elapsed += seconds
        if accuracy >= threshold:
            return {"epoch": epoch, "minutes": round(elapsed / 60, 2)}
    return None


def run(recipe_name: str, epochs: int, minutes: float, work: Path, records, vocabulary, seed: int):
    recipe = get_recipe(recipe_name)
    folder = work / f"data-{recipe.width}x{recipe.height}"
    if not folder.exists():
        for name, part in records.items():
            save_split(part, vocabulary, folder / name, height=recipe.height, width=recipe.width,
                       max_label_length=5)
    result = train_captcha_model(
        recipe, vocabulary,
        load_split(folder / "train", recipe.batch_size, shuffle=True, seed=seed),
        load_split(folder / "validation", recipe.batch_size),
        plan=TrainingPlan(recipe.batch_size, epochs, patience=epochs, start_from_epoch=0),
        seed=seed, callbacks=[TimeBudget(minutes * 60)])
    history = result.history
    return {
        "recipe": recipe_name,
        "description": recipe.description,
        "epochs_run": len(history["loss"]),
        "seconds_per_epoch": round(sum(history["epoch_seconds"]) / len(history["loss"]), 1),
        "train_images_per_second": round(len(records["train"]) * len(history["loss"])
                                         / sum(history["epoch_seconds"]), 1),
        "best_val_sequence_accuracy": max(history["val_sequence_accuracy"]),
        "final_val_loss": history["val_loss"][-1],
        "reached": {f"{int(t * 100)}%": first_reaching(history, t) for t in THRESHOLDS},
        "history": history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget per recipe")
    parser.add_argument("--crnn-epochs", type=int, default=30)
    parser.add_argument("--seed-epochs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results-recipes"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    images = args.out / "images"
    if not images.exists():
        generate_captchas(images, args.num_samples, args.seed, workers=2)
    index = ds.index_images(ds.list_pngs(images))
    records = ds.split_records(index, validation_fraction=0.1, test_fraction=0.1, seed=args.seed)
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in index]))

    results = [run(name, epochs, args.minutes, args.out, records, vocabulary, args.seed)
               for name, epochs in (("crnn", args.crnn_epochs), ("keras_example", args.seed_epochs))]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    (args.out / "results.json").write_text(json.dumps(
        {"machine": machine, "num_samples": args.num_samples, "results": results}, indent=2))
    print(f"\n{args.num_samples} generated captchas (80/10/10), {args.minutes} min budget; {machine}")
    print("| recipe | s/epoch | img/s | epochs run | best val seq. acc. | 50% | 90% | 95% |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        reached = [f"epoch {v['epoch']}, {v['minutes']} min" if v else "not reached"
                   for v in r["reached"].values()]
        print(f"| {r['recipe']} | {r['seconds_per_epoch']} | {r['train_images_per_second']} | "
              f"{r['epochs_run']} | {100 * r['best_val_sequence_accuracy']:.1f}% | "
              + " | ".join(reached) + " |")


if __name__ == "__main__":
    main()
