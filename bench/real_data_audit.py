"""Which of the 936 shared real captchas a design decision consulted, and the real-data figure on
the test images none consulted.

A decision "consulted" an image when a benchmark that chose a default read it to compare choices:
a development set, or a validation split whose figures were compared (not a training image, and
not a set read once after the choice was made). Each benchmark's sets are rebuilt from its script
and the split code of its commit (the old split shuffled the records, sorted by label and hash,
with `random.Random(seed)` and cut validation and test at round(10%)), and checked against what
its raw JSON names (misread labels, counts):

- the first real-data run on all 936 (7c5f880; its figures only): 96.8% of its test split led
  to the training plan and the levers that followed: its validation 94 and test 94;
- `bench/real_captchas.py` and its 96,000-image run (aa15c57, 4c7bb0b) chose the plan's length
  on the 136 of `bench/real_holdout.txt`; the runs' test split is 80 of the other 800;
- `bench/real_captcha_levers.py` (aa15c57) chose 32 CTC steps and tf.data augmentation on the
  same 800's split: validation 80 and development 80 (the test split above);
- `bench/early_stopping.py --kind real` (bbe494b) chose the stopping rule on the validation 70
  and test 70 of the 700 left after the 136 and the fresh 100 (its development set: those 70 and
  the 136).

The fresh 100 (`bench/real_fresh.txt`) were read once after the rule was chosen: not consulted.

    .venv/bin/python bench/real_data_audit.py                         # the sets, the overlaps
    nice -n 10 .venv/bin/python bench/real_data_audit.py --run --work /tmp/real-audit \\
        --out bench/real_data_audit.json                                # + the README command, read

`--run` runs the README's real-data command on the 936 files (`ocr-pipeline captcha --source
dir`, nothing tuned) on a fresh results root and reads its test split and the part of it no
decision consulted (`bench/real_unconsulted.txt`, written here) with `ocr-pipeline evaluate`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REAL_DATA = ROOT.parent / "shared" / "datasets" / "captcha_images_v2"
CLI = Path(sys.executable).with_name("ocr-pipeline")
UNCONSULTED = BENCH / "real_unconsulted.txt"


def listed(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def old_split(names: list[str], digests: dict[str, str], seed: int = 42) -> dict[str, list[str]]:
    """The split of the code before the content-hash split (80/10/10, rounded)."""
    ordered = sorted(names, key=lambda name: (Path(name).stem, digests[name]))
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    n_validation, n_test = round(n * 0.1), round(n * 0.1)
    n_train = n - n_validation - n_test
    return {"train": ordered[:n_train], "validation": ordered[n_train:n_train + n_validation],
            "test": ordered[n_train + n_validation:]}


def content_split(names: list[str], digests: dict[str, str], seed: int = 42) -> dict[str, list[str]]:
    """Today's split (`ocr_core.data.dataset.SPLIT_RULE`), 80/10/10."""
    splits: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for name in names:
        salted = hashlib.sha256(f"{seed}:{digests[name]}".encode()).digest()
        position = int.from_bytes(salted[:8], "big") / 2**64
        splits["test" if position < 0.1 else "validation" if position < 0.2 else "train"].append(name)
    return splits


def consulted_sets() -> tuple[dict[str, set[str]], dict, list[str], dict[str, str]]:
    """({set name: file names}, checks against the raw JSON, all names, sha256 by name)."""
    files = sorted(REAL_DATA.glob("*.png"))
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    names = sorted(digests)
    by_hash = sorted(names, key=digests.get)
    holdout = listed(BENCH / "real_holdout.txt")
    fresh = listed(BENCH / "real_fresh.txt")
    pool_800 = [n for n in names if n not in set(holdout)]
    pool_700 = [n for n in pool_800 if n not in set(fresh)]
    first = old_split(names, digests)
    levers = old_split(pool_800, digests)
    stopping = old_split(pool_700, digests)
    sets = {
        "first run (936): validation": set(first["validation"]),
        "first run (936): test": set(first["test"]),
        "real_holdout.txt (plan length, stopping rule)": set(holdout),
        "levers / real_captchas (800): validation": set(levers["validation"]),
        "levers / real_captchas (800): development = test": set(levers["test"]),
        "early stopping (700): validation": set(stopping["validation"]),
        "early stopping (700): test": set(stopping["test"]),
    }
    lever_misreads = [json.loads(line)["development"]["misreads"]
                      for line in (BENCH / "real_captcha_levers.jsonl").read_text().splitlines()]
    stopping_raw = json.loads((BENCH / "early_stopping-real.json").read_text())
    real_raw = json.loads((BENCH / "real_captchas.json").read_text())
    checks = {
        "holdout is the first 136 by sha256": set(holdout) == set(by_hash[:136]),
        "fresh is the next 100 by sha256": fresh == by_hash[136:236],
        "lever development misreads are in the rebuilt development 80": all(
            f"{truth}.png" in sets["levers / real_captchas (800): development = test"]
            for misreads in lever_misreads for truth, _ in misreads),
        "real_captchas.json's held-out misread is in real_holdout.txt": all(
            f"{truth}.png" in set(holdout) for truth, _ in real_raw["unseen_real"]["misreads"]),
        "early stopping counts (560/70/70) match": [len(stopping[k]) for k in
                                                    ("train", "validation", "test")] == [
            stopping_raw["counts"][k] for k in ("train", "validation", "test")],
        "first run split 748/94/94 (7c5f880's BENCHMARKS wrote 750/94/94)": [len(first[k]) for k in
                                                             ("train", "validation", "test")]
        == [748, 94, 94],
    }
    return sets, checks, names, digests


def audit() -> dict:
    sets, checks, names, digests = consulted_sets()
    consulted = set().union(*sets.values())
    readme = content_split(names, digests)
    test = readme["test"]
    clean = [n for n in test if n not in consulted]
    UNCONSULTED.write_text(
        "# The README real-data command's test split (content-hash split of the 936 shared files, "
        "seed 42) less every image a design decision consulted (bench/real_data_audit.py)\n"
        + "".join(f"{name}\n" for name in clean))
    return {
        "files": len(names),
        "checks": checks,
        "sets": {name: len(members) for name, members in sets.items()},
        "consulted_union": len(consulted),
        "never_consulted": len(names) - len(consulted),
        "readme_split": {name: len(members) for name, members in readme.items()},
        "readme_test_consulted_by": {name: len(set(test) & members)
                                     for name, members in sets.items()},
        "readme_test_unconsulted": len(clean),
        "unconsulted_list": str(UNCONSULTED.relative_to(ROOT)),
    }


def evaluate(model: str, folder: Path) -> dict:
    output = subprocess.run([str(CLI), "evaluate", "--model", model, "--json", str(folder)],
                            check=True, capture_output=True, text=True).stdout
    report = json.loads(output)
    return {"count": report["count"], "sequence_accuracy": report["sequence_accuracy"],
            "character_error_rate": report["character_error_rate"],
            "misreads": [(m["truth"], m["prediction"]) for m in report["misreads"]]}


def run_readme_command(work: Path, report: dict) -> None:
    """The README's real-data command on the 936 files, then its test split read twice."""
    command = [str(CLI), "captcha", "--source", "dir", "--data-dir", str(REAL_DATA),
               "--results-dir", str(work / "results")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    report["command"] = "ocr-pipeline captcha --source dir --data-dir <the 936 files>"
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-3000:])
    report["stdout"] = done.stdout[-1500:]
    model = re.search(r"^model:\s+(\S+)", done.stdout, re.MULTILINE).group(1)
    split = json.loads(next((work / "results" / "manifests").glob("split-*.json")).read_text())
    test = sorted(Path(item["path"]).name for item in split["test"])
    clean = listed(UNCONSULTED)
    if sorted(clean) != sorted(set(clean) & set(test)):
        raise SystemExit("the run's test split does not hold bench/real_unconsulted.txt")
    for name, members in (("test", test), ("test_unconsulted", clean)):
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        for member in members:
            (folder / member).unlink(missing_ok=True)
            (folder / member).symlink_to(REAL_DATA / member)
        report[name] = evaluate(model, folder)
    metrics = json.loads((Path(model) / "metrics.json").read_text())
    report["kept_epoch"] = metrics.get("kept_epoch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="also run the README command and read")
    parser.add_argument("--work", type=Path, default=Path("/tmp/real-data-audit"))
    parser.add_argument("--out", type=Path, help="write the raw JSON here")
    args = parser.parse_args()
    if not REAL_DATA.is_dir():
        print(f"skipped: no real captcha dataset at {REAL_DATA}")
        return 0
    report = audit()
    if args.run:
        run_readme_command(args.work, report)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
