"""Tiny MNIST look-alikes written in the real file formats (IDX, keras .npz), for tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 white-on-black rendered digits, shifted and noised; labels 0-9."""
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=20)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = np.empty((count, 28, 28), np.uint8)
    for index, label in enumerate(labels):
        picture = Image.new("L", (28, 28))
        position = (int(rng.integers(4, 13)), int(rng.integers(-1, 4)))
        ImageDraw.Draw(picture).text(position, str(label), fill=255, font=font)
        noise = rng.integers(0, 40, (28, 28))
        images[index] = np.clip(np.asarray(picture, np.int64) + noise, 0, 255)
    return images, labels


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes, built by hand: 0, 0, 0x08, ndim, big-endian sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_copy(folder: Path, arrays: list[np.ndarray], *, gzipped: bool = True) -> list[Path]:
    """The four MNIST IDX files (train images, train labels, test images, test labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in zip(IDX_NAMES, arrays, strict=True):
        path = folder / (f"{name}.gz" if gzipped else name)
        path.write_bytes(gzip.compress(idx_bytes(array)) if gzipped else idx_bytes(array))
        paths.append(path)
    return paths


def write_npz_copy(path: Path, arrays: list[np.ndarray]) -> Path:
    """A keras-style mnist.npz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays, strict=True)))
    return path


def synthetic_mnist(train: int = 300, test: int = 100, seed: int = 0) -> list[np.ndarray]:
    """[x_train, y_train, x_test, y_test] of synthetic digits."""
    return [*synthetic_digits(train, seed), *synthetic_digits(test, seed + 1)]
