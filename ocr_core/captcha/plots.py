"""Pictures of a run, saved as PNG files: sample grids, loss curves, prediction grids.

Figures are built without pyplot, so no global figure state is shared between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ocr_core.files import save_png


def _as_picture(image: np.ndarray) -> np.ndarray:
    """(width, height, 1) model input -> (height, width) picture."""
    return np.asarray(image)[..., 0].T


def plot_samples(images: Sequence[np.ndarray], titles: Sequence[str], path: str | Path,
                 *, columns: int = 4) -> Path:
    """A grid (4x4 for 16 images) of model inputs titled with their labels."""
    rows = max(1, -(-len(images) // columns))
    figure = Figure(figsize=(3 * columns, 1.2 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(_as_picture(image), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
    return save_png(figure, path)


def plot_predictions(images: Sequence[np.ndarray], predictions: Sequence[str],
                     truths: Sequence[str], path: str | Path, *, columns: int = 4) -> Path:
    """A grid of images titled "prediction (truth)": green when right, red and marked when wrong."""
    rows = max(1, -(-len(images) // columns))
    figure = Figure(figsize=(3 * columns, 1.3 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, prediction, truth in zip(axes.flat, images, predictions, truths, strict=False):
        ax.imshow(_as_picture(image), cmap="gray", vmin=0, vmax=1)
        right = prediction == truth
        title = prediction if right else f"✗ {prediction} (truth {truth})"
        ax.set_title(title, fontsize=10, color="green" if right else "red")
    return save_png(figure, path)


def plot_history(history: dict[str, list[float]], path: str | Path) -> Path:
    """Training and validation loss per epoch; validation sequence accuracy on a second axis."""
    figure = Figure(figsize=(7, 4))
    ax = figure.subplots()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="train loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("CTC loss")
    ax.set_yscale("log")
    lines, labels = ax.get_legend_handles_labels()
    if "val_sequence_accuracy" in history:
        accuracy_axis = ax.twinx()
        accuracy_axis.plot(epochs, history["val_sequence_accuracy"], "g--",
                           label="validation sequence accuracy")
        accuracy_axis.set_ylabel("sequence accuracy")
        accuracy_axis.set_ylim(0, 1)
        more_lines, more_labels = accuracy_axis.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
    ax.legend(lines, labels, loc="center right")
    ax.set_title("Training history")
    return save_png(figure, path)
