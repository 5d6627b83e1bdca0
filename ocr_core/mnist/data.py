"""MNIST at rest: four uint8 arrays checked once, saved as one canonical `.npz`, split for validation.

The canonical file is the hand-off between loading and training: whatever the source (IDX files,
a keras `mnist.npz`, tfds), training reads the same layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ocr_core.errors import DataError
from ocr_core.files import atomic_path

IMAGE_SIZE = 28
NUM_CLASSES = 10
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class DigitArrays:
    """MNIST as arrays: images (count, 28, 28) uint8 in 0-255, labels (count,) uint8 in 0-9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @classmethod
    def checked(cls, origin: str, x_train: np.ndarray, y_train: np.ndarray,
                x_test: np.ndarray, y_test: np.ndarray) -> DigitArrays:
        """Arrays in the canonical layout, or a DataError naming `origin` and what is wrong.

        Images may come as (count, 28, 28) or (count, 28, 28, 1); labels as any integer type.
        """
        return cls(*_check_split(origin, "train", x_train, y_train),
                   *_check_split(origin, "test", x_test, y_test))

    @property
    def counts(self) -> dict[str, int]:
        return {"train": len(self.y_train), "test": len(self.y_test)}

    def digest(self) -> str:
        """sha256 of the arrays' shapes and bytes: equal for equal content, whatever the file."""
        digest = hashlib.sha256()
        for name in ARRAY_NAMES:
            array = np.ascontiguousarray(getattr(self, name))
            digest.update(f"{name}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


def _check_split(origin: str, split: str, images: np.ndarray,
                 labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{origin}: {split} images have shape {images.shape}; expected "
                        f"(count, {IMAGE_SIZE}, {IMAGE_SIZE})")
    if images.dtype != np.uint8:
        raise DataError(f"{origin}: {split} images are {images.dtype}; expected uint8 (0-255)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{origin}: {len(images)} {split} images but labels of shape "
                        f"{labels.shape}")
    if len(labels) == 0:
        raise DataError(f"{origin}: no {split} images")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{origin}: {split} labels must be integers 0-{NUM_CLASSES - 1}, got "
                        f"{labels.dtype} from {labels.min()} to {labels.max()}")
    return images, labels.astype(np.uint8)


def save_arrays(arrays: DigitArrays, path: str | Path) -> Path:
    """Write the arrays as an uncompressed `.npz` (fast to read back), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{name: getattr(arrays, name) for name in ARRAY_NAMES})
    return path


def load_arrays(path: str | Path) -> DigitArrays:
    """Read a `.npz` with x_train, y_train, x_test, y_test (canonical or keras's `mnist.npz`)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ARRAY_NAMES if name not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; an MNIST .npz holds "
                                f"{list(ARRAY_NAMES)}")
            values = [archive[name] for name in ARRAY_NAMES]
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path} as .npz: {error}") from error
    return DigitArrays.checked(str(path), *values)


def split_validation(images: np.ndarray, labels: np.ndarray, fraction: float,
                     seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Carve a seeded random `fraction` of the training data out for early stopping.

    Returns:
        ((train images, train labels), (validation images, validation labels)).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    count = len(labels)
    validation_count = max(1, round(count * fraction))
    if validation_count >= count:
        raise DataError(f"{count} training images are too few to hold out {fraction:.0%} "
                        "for validation")
    order = np.random.default_rng(seed).permutation(count)
    held_out, kept = np.sort(order[:validation_count]), np.sort(order[validation_count:])
    return (images[kept], labels[kept]), (images[held_out], labels[held_out])
