"""Benchmark: which early-stopping rule keeps the epoch that reads held-out captchas best.

One training per data kind runs its whole plan (nothing stops it) and records, after every epoch,
the validation figures the rules watch and which development images the model reads right, and
saves that epoch's weights. Which epoch each rule would have kept (and when it would have
stopped) is then computed from the history with the product's own rule code
(`ocr_core.training.stopping.select_epoch`), so one run compares every rule.

- generated: the main job (`ocr-pipeline captcha` defaults: 20,000 captchas of seed 42, split
  80/10/10, crnn, 6 epochs of 16,000); development set: 1,000 captchas of seed 7001; fresh set:
  1,000 of seed 7002.
- real: the shared 936 captcha_images_v2 files; the 136 of bench/real_holdout.txt (already
  consulted once) are the development set, with the run's own 70 test images; the next 100 by
  sha256 (bench/real_fresh.txt) are the fresh set; the other 700 are what the README's real-data
  command trains on (split 80/10/10 with seed 42, augmented; the default plan is 286 epochs of
  560, the recorded run used `--epochs 60` for lack of machine time).

The fresh set is read only by `quote`, once the rule is chosen on the development set, with the
kept epochs' saved weights. Run trainings alone (`nice -n 19`, one at a time):

    .venv/bin/python bench/early_stopping.py train --kind real --work /tmp/es-real
    .venv/bin/python bench/early_stopping.py compare
    .venv/bin/python bench/early_stopping.py quote --kind real --rule RULE --work /tmp/es-real
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL_DATA = ROOT.parent / "shared" / "datasets" / "captcha_images_v2"
BENCH = ROOT / "bench"
SEEDS = {"train": 42, "development": 7001, "fresh": 7002}
GENERATED = {"train": 20_000, "development": 1_000, "fresh": 1_000}
FRESH_COUNT = 100


def raw_path(kind: str) -> Path:
    return BENCH / f"early_stopping-{kind}.json"


def real_sets() -> dict[str, list[Path]]:
    """{"pool", "development", "fresh"}: the 136 listed files, the next 100 by sha256, the rest."""
    listed = {line.strip() for line in (BENCH / "real_holdout.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    files = sorted(REAL_DATA.glob("*.png"), key=lambda p: hashlib.sha256(p.read_bytes()).hexdigest())
    development = [p for p in files if p.name in listed]
    rest = [p for p in files if p.name not in listed]
    fresh, pool = rest[:FRESH_COUNT], rest[FRESH_COUNT:]
    fresh_list = BENCH / "real_fresh.txt"
    names = "".join(f"{p.name}\n" for p in fresh)
    header = ("# 100 shared captcha_images_v2 files kept out of training and choosing: the first 100 "
              "by sha256 of their bytes after excluding bench/real_holdout.txt\n")
    if not fresh_list.exists():
        fresh_list.write_text(header + names)
    elif fresh_list.read_text() != header + names:
        raise SystemExit(f"{fresh_list} does not match the files; the data changed")
    return {"pool": pool, "development": development, "fresh": fresh}


def data(kind: str, work: Path) -> tuple[dict, dict[str, list], bool]:
    """(description, {train, validation, test, development, fresh: records}, augment)."""
    from ocr_core.captcha.synthetic import generate_captchas
    from ocr_core.data import dataset as ds

    if kind == "generated":
        sets = {name: generate_captchas(work / "images" / name, GENERATED[name], SEEDS[name])
                for name in GENERATED}
        pool, development, fresh = sets["train"], sets["development"], sets["fresh"]
        augment = False
    else:
        if not REAL_DATA.is_dir():
            raise SystemExit(f"skipped: no real captcha dataset at {REAL_DATA}")
        real = real_sets()
        pool, development, fresh = real["pool"], real["development"], real["fresh"]
        augment = True
    splits = ds.split_records(ds.index_images(pool), validation_fraction=0.1,
                              test_fraction=0.1, seed=SEEDS["train"])
    splits["development"] = ds.index_images(development)
    splits["fresh"] = ds.index_images(fresh)
    return {name: len(records) for name, records in splits.items()}, splits, augment


def train(kind: str, work: Path, smoke: bool = False, epochs: int | None = None) -> None:
    """Run the plan to its end; record per-epoch validation figures and development reads."""
    import keras
    import numpy as np

    from ocr_core.captcha.ctc import Vocabulary, decode_texts
    from ocr_core.captcha.models import get_recipe
    from ocr_core.captcha.pipeline import load_split, save_split
    from ocr_core.captcha.training import plan_training, train_captcha_model
    from ocr_core.data import dataset as ds

    if smoke:
        GENERATED.update(train=200, development=40, fresh=40)
    counts, splits, augment = data(kind, work)
    every = [r for records in splits.values() for r in records]
    vocabulary = ds.build_vocabulary([r.label for r in every])
    chars, recipe = Vocabulary(vocabulary), get_recipe("crnn")
    for name in ("train", "validation", "test", "development"):
        save_split(splits[name], chars, work / "splits" / name, height=recipe.height,
                   width=recipe.width, max_label_length=max(len(r.label) for r in every))
    plan = plan_training(len(splits["train"]), recipe, augment=augment,
                         epochs=2 if smoke else epochs)
    planned = plan_training(len(splits["train"]), recipe, augment=augment)
    unstopped = dataclasses.replace(plan, patience=plan.epochs + 1, start_from_epoch=0)
    reads: dict[str, list[str]] = {"test": [], "development": []}
    weights = work / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    # Each set held in memory in batches of 256: a few model calls per set and epoch.
    batches = {name: list(load_split(work / "splits" / name, 256)) for name in reads}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for name, batch in batches.items():
                predictions, truths = [], []
                for images, labels in batch:
                    predictions += decode_texts(self.model(images, training=False), chars)[0]
                    truths += [chars.decode(row) for row in labels.numpy()]
                reads[name].append("".join("1" if p == t else "0"
                                           for p, t in zip(predictions, truths, strict=True)))
            np.savez(weights / f"epoch-{epoch + 1}.npz", *self.model.get_weights())
            print(f"epoch {epoch + 1}: development {reads['development'][-1].count('1')}/"
                  f"{counts['development']}", flush=True)

    started = time.perf_counter()
    result = train_captcha_model(recipe, chars,
                                 load_split(work / "splits" / "train", plan.batch_size, shuffle=True,
                                            augment=augment, seed=SEEDS["train"]),
                                 load_split(work / "splits" / "validation", plan.batch_size),
                                 plan=unstopped, seed=SEEDS["train"], callbacks=[Record()])
    history = result.history
    raw = {
        "kind": kind, "recipe": recipe.name, "augment": augment, "vocabulary": vocabulary,
        "counts": counts, "plan": dataclasses.asdict(plan),
        "default_plan_epochs": planned.epochs,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; "
                   "shared with other sessions' work (run with nice -n 19)",
        "train_seconds": round(time.perf_counter() - started, 1),
        "images_per_epoch": len(splits["train"]),
        "epochs": [{"epoch": i + 1, **{name: history[name][i] for name in
                                       ("loss", "val_loss", "val_sequence_accuracy",
                                        "val_character_error_rate", "epoch_seconds")},
                    "test_correct": reads["test"][i], "development_correct": reads["development"][i]}
                   for i in range(len(history["loss"]))],
    }
    out = work / "smoke.json" if smoke else raw_path(kind)
    out.write_text(json.dumps(raw, indent=1) + "\n")
    print(f"wrote {out}")


def wilson(correct: int, count: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion."""
    if count == 0:
        return 0.0, 1.0
    p = correct / count
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * ((p * (1 - p) + z * z / (4 * count)) / count) ** 0.5 / (1 + z * z / count)
    return max(0.0, centre - half), min(1.0, centre + half)


def percent(correct: int, count: int) -> str:
    low, high = wilson(correct, count)
    return f"{100 * correct / count:.1f}% ({correct}/{count}, {100 * low:.1f}-{100 * high:.1f}%)"


def windows(epochs: int) -> dict[str, tuple[int, int]]:
    """{name: (start_from_epoch, patience)}: today's plan and the new one (plan_training)."""
    import math

    from ocr_core.captcha.models import get_recipe
    from ocr_core.captcha.training import plan_training

    new = plan_training(1, get_recipe("crnn"), epochs=epochs)
    return {"today": (epochs // 2, max(4, math.ceil(epochs / 10))),
            "new": (new.start_from_epoch, new.patience)}


def selections(raw: dict) -> list[dict]:
    """Each rule under each window: kept epoch, epochs run, development reads at the kept epoch."""
    from ocr_core.training.stopping import RULES, select_epoch

    epochs = raw["epochs"]
    history = {name: [e[name] for e in epochs] for name in
               ("val_loss", "val_sequence_accuracy", "val_character_error_rate")}
    rows = []
    for window, (start, patience) in windows(len(epochs)).items():
        for rule in RULES.values():
            chosen = select_epoch(history, rule, start, patience)
            epoch = epochs[chosen.kept_epoch - 1]
            development = epoch["development_correct"] + epoch["test_correct"]
            rows.append({"window": window, "start_from_epoch": start, "patience": patience,
                         "rule": rule.name, "kept_epoch": chosen.kept_epoch,
                         "epochs_run": chosen.epochs_run,
                         "images_seen": chosen.epochs_run * raw["images_per_epoch"],
                         "development_correct": development.count("1"),
                         "development_count": len(development), "reason": chosen.reason})
    return rows


def compare() -> None:
    """Print and save, per data kind, which epoch each rule keeps and its development accuracy."""
    out = {}
    for kind in ("generated", "real"):
        if not raw_path(kind).exists():
            continue
        raw = json.loads(raw_path(kind).read_text())
        rows = selections(raw)
        best = max(range(len(raw["epochs"])), key=lambda i: (
            raw["epochs"][i]["development_correct"] + raw["epochs"][i]["test_correct"]).count("1"))
        out[kind] = {"counts": raw["counts"], "epochs": len(raw["epochs"]),
                     "best_development_epoch": best + 1, "rules": rows}
        print(f"\n{kind}: {len(raw['epochs'])} epochs of {raw['images_per_epoch']} images; "
              f"the best epoch on the development set would be {best + 1}")
        print("| window | rule | kept epoch | epochs run | images seen | development accuracy |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['window']} (from {row['start_from_epoch'] + 1}, patience "
                  f"{row['patience']}) | {row['rule']} | {row['kept_epoch']} | "
                  f"{row['epochs_run']} | {row['images_seen']:,} | "
                  f"{percent(row['development_correct'], row['development_count'])} |")
    (BENCH / "early_stopping-compare.json").write_text(json.dumps(out, indent=1) + "\n")


def quote(kind: str, rule: str, work: Path) -> None:
    """Read the fresh set once with the epochs the chosen rule and today's rule keep."""
    import numpy as np

    from ocr_core.captcha.ctc import Vocabulary
    from ocr_core.captcha.models import get_recipe
    from ocr_core.captcha.pipeline import load_split, save_split
    from ocr_core.captcha.synthetic import generate_captchas
    from ocr_core.captcha.training import read_split
    from ocr_core.data import dataset as ds

    raw = json.loads(raw_path(kind).read_text())
    kept = {(r["window"], r["rule"]): r for r in selections(raw)}
    chosen = {"chosen": kept[("new", rule)], "today": kept[("today", "cer")]}
    fresh = (generate_captchas(work / "images" / "fresh", GENERATED["fresh"], SEEDS["fresh"])
             if kind == "generated" else real_sets()["fresh"])
    chars, recipe = Vocabulary(raw["vocabulary"]), get_recipe(raw["recipe"])
    folder = work / "splits" / "fresh"
    if not folder.exists():
        save_split(ds.index_images(fresh), chars, folder, height=recipe.height,
                   width=recipe.width, max_label_length=max(len(ds.label_of(p)) for p in fresh))
    raw["fresh"] = {}
    for name, row in chosen.items():
        model = recipe.build_model(chars.num_classes)
        with np.load(work / "weights" / f"epoch-{row['kept_epoch']}.npz") as stored:
            model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])
        reading = read_split(model, load_split(folder, 64), chars)
        predictions, truths = reading.predictions, reading.truths
        correct = sum(p == t for p, t in zip(predictions, truths, strict=True))
        raw["fresh"][name] = {"rule": row["rule"], "window": row["window"],
                              "kept_epoch": row["kept_epoch"], "epochs_run": row["epochs_run"],
                              "correct": correct, "count": len(truths),
                              "misreads": [(t, p) for p, t in zip(predictions, truths, strict=True)
                                           if p != t]}
        print(f"{kind} fresh set, {name} ({row['rule']}, epoch {row['kept_epoch']} of "
              f"{row['epochs_run']} run): {percent(correct, len(truths))}")
    raw_path(kind).write_text(json.dumps(raw, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["train", "compare", "quote"])
    parser.add_argument("--kind", choices=["generated", "real"])
    parser.add_argument("--work", type=Path, help="images, splits and per-epoch weights")
    parser.add_argument("--rule", help="the rule chosen on the development set (quote)")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 2 epochs (a dry run)")
    parser.add_argument("--epochs", type=int, help="a shorter plan than the default's")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.step == "train":
        train(args.kind, args.work, args.smoke, args.epochs)
    elif args.step == "compare":
        compare()
    else:
        quote(args.kind, args.rule, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
