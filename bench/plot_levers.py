"""Time-to-accuracy curves of the real-captcha levers: validation accuracy against images seen
and against training minutes, one line per variant of `bench/real_captcha_levers.py`.

    .venv/bin/python bench/plot_levers.py levers.jsonl bench/real_captcha_curves.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results: Path, out: Path) -> None:
    runs = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    figure, (by_images, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for run in runs:
        curve = run["curve"]
        label = (f"{run['variant']} (dev {100 * run['development']['sequence_accuracy']:.1f}%, "
                 f"{run['images_per_second']:.0f} img/s)")
        accuracy = [100 * point["val_sequence_accuracy"] for point in curve]
        by_images.plot([point["images_seen"] / 1000 for point in curve], accuracy, label=label)
        by_time.plot([point["seconds"] / 60 for point in curve], accuracy, label=label)
    by_images.set_xlabel("training images seen (thousands)")
    by_time.set_xlabel("training minutes (2-core CPU, shared during these runs)")
    by_images.set_ylabel("validation sequence accuracy (%)")
    for axis in (by_images, by_time):
        axis.set_ylim(80, 100.5)
        axis.grid(alpha=0.3)
    by_images.legend(fontsize=8, loc="lower right")
    figure.suptitle("Real captchas (640 training images): time to accuracy per lever")
    figure.tight_layout()
    figure.savefig(out, dpi=100)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
