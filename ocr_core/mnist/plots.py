"""Pictures of the MNIST flow: a grid of digits, a confusion matrix, a grid of misread digits.

Built on matplotlib `Figure` without pyplot (no global figure state shared between threads) and
saved atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ocr_core.files import save_png


def plot_digit_grid(images: np.ndarray, titles: Sequence[str], path: str | Path, *,
                    columns: int = 6, title: str | None = None,
                    title_colors: Sequence[str] | None = None) -> Path:
    """A grid of (count, 28, 28) uint8 digits, each titled (6x6 for 36 digits)."""
    rows = max(1, -(-len(images) // columns))
    figure = Figure(figsize=(1.4 * columns, 1.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    colors = title_colors or ["black"] * len(images)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, text, color in zip(axes.flat, images, titles, colors, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(text, fontsize=9, color=color)
    if title:
        figure.suptitle(title)
    return save_png(figure, path)


def plot_misclassified(images: np.ndarray, predicted: np.ndarray, truth: np.ndarray,
                       path: str | Path, *, columns: int = 6, title: str | None = None) -> Path:
    """Misread digits titled "read P (true T)"; an empty grid says so when there are none."""
    if len(images) == 0:
        figure = Figure(figsize=(4, 1))
        figure.text(0.5, 0.5, "no misclassified digits", ha="center", va="center")
        return save_png(figure, path)
    titles = [f"read {p} (true {t})" for p, t in zip(predicted, truth, strict=True)]
    return plot_digit_grid(images, titles, path, columns=columns, title=title,
                           title_colors=["red"] * len(images))


def plot_confusion_matrix(matrix: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    """(10, 10) counts, rows = true digit, columns = predicted digit, each cell annotated."""
    matrix = np.asarray(matrix)
    classes = len(matrix)
    figure = Figure(figsize=(6.5, 5.5))
    ax = figure.subplots()
    # Log colours: the diagonal holds ~1000 per class, the mistakes a handful.
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    threshold = np.log1p(matrix).max() / 2
    for row in range(classes):
        for column in range(classes):
            count = matrix[row, column]
            ax.text(column, row, str(count), ha="center", va="center", fontsize=7,
                    color="white" if np.log1p(count) > threshold else "black")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title or "Confusion matrix")
    figure.colorbar(image, ax=ax, label="log(1 + count)")
    return save_png(figure, path)
