"""Index a folder of `<label>.png` captchas, and split it reproducibly; both hand-offs are JSON files.

A manifest is `{"images": [{"path", "label", "sha256"}, ...], "vocabulary": "..."}`; its digest
covers labels and bytes, not locations, so the same images elsewhere are the same data. Paths are
written relative to the images' folder and resolved against the folder given when read, so a copy
of the images elsewhere reads its own files (older manifests with absolute paths still read).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocr_core.errors import ConfigError, DataError
from ocr_core.files import read_json, sha256_file, sha256_json, write_json

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class ImageRecord:
    """One captcha image: where it is, what it reads, and a hash of its bytes."""

    path: str
    label: str
    sha256: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "label": self.label, "sha256": self.sha256}


def list_pngs(folder: str | Path) -> list[Path]:
    """The `.png` files directly in `folder`, sorted by name; hidden files are ignored.

    Raises:
        DataError: `folder` is not a directory or holds no PNG file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"not a folder of captchas: {folder}")
    paths = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() == ".png" and not p.name.startswith(".") and p.is_file()
    )
    if not paths:
        raise DataError(f"no .png files in {folder}")
    return paths


def label_of(path: str | Path) -> str:
    """The label a captcha file carries: its name without `.png`."""
    return Path(path).stem


def index_images(paths: list[Path], digests: dict[str, str] | None = None) -> list[ImageRecord]:
    """(path, label, sha256) records for the given PNG files, in the given order.

    Args:
        digests: sha256 by file name, already computed (validation hashes each file once);
            files missing from it are hashed here.
    """
    digests = digests or {}
    return [ImageRecord(str(Path(p).absolute()), label_of(p),
                        digests.get(Path(p).name) or sha256_file(p)) for p in paths]


def build_vocabulary(labels: list[str]) -> str:
    """The sorted distinct characters of `labels`, as one string."""
    return "".join(sorted(set("".join(labels))))


def records_digest(records: list[ImageRecord]) -> str:
    """Content hash of a list of records: labels and bytes, independent of where files live."""
    return sha256_json(sorted((r.label, r.sha256) for r in records))


def _stored(record: ImageRecord, images_root: str | Path | None) -> dict[str, str]:
    if images_root is None:
        return record.as_dict()
    relative = os.path.relpath(Path(record.path).absolute(), Path(images_root).absolute())
    return record.as_dict() | {"path": relative}


def _loaded(item: dict[str, str], images_root: str | Path | None) -> ImageRecord:
    path = Path(item["path"])
    if images_root is not None:
        path = Path(images_root) / path  # an absolute path (an older manifest) stays as it is
    return ImageRecord(**item | {"path": str(path)})


def write_manifest(
    path: str | Path, records: list[ImageRecord], images_root: str | Path | None = None
) -> str:
    """Write the manifest of `records` (with its vocabulary) and return its digest.

    Args:
        images_root: the folder the images are in; paths are written relative to it.
    """
    digest = records_digest(records)
    write_json(path, {
        "digest": digest,
        "vocabulary": build_vocabulary([r.label for r in records]),
        "images": [_stored(r, images_root) for r in records],
    })
    return digest


def read_manifest(
    path: str | Path, images_root: str | Path | None = None
) -> tuple[list[ImageRecord], str]:
    """Records and vocabulary of a manifest file; relative paths are resolved against
    `images_root` (the folder holding the images now)."""
    data = read_json(path)
    return [_loaded(item, images_root) for item in data["images"]], data["vocabulary"]


SPLIT_RULE = ("content-hash: sha256 of '<seed>:<sha256 of the image bytes>' read as a fraction "
              "u in [0, 1); test if u < test_fraction, validation if u < test_fraction + "
              "validation_fraction, else train")


def split_position(sha256: str, seed: int) -> float:
    """Where an image falls in [0, 1) for the split: a hash of its content salted with `seed`."""
    salted = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    return int.from_bytes(salted[:8], "big") / 2**64


def split_records(
    records: list[ImageRecord], *, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[ImageRecord]]:
    """Cut records into train/validation/test by their content (`SPLIT_RULE`).

    Each image's split depends only on its bytes and `seed`, so adding images never moves an
    existing one; the fractions hold within sampling noise. Each split is sorted by label and hash.

    Raises:
        ConfigError: the fractions leave a split empty.
    """
    splits: dict[str, list[ImageRecord]] = {name: [] for name in SPLITS}
    for record in sorted(records, key=lambda r: (r.label, r.sha256)):
        position = split_position(record.sha256, seed)
        name = ("test" if position < test_fraction else
                "validation" if position < test_fraction + validation_fraction else "train")
        splits[name].append(record)
    if min(len(split) for split in splits.values()) < 1:
        raise ConfigError(
            f"{len(records)} images cannot be split {1 - validation_fraction - test_fraction:.2f}/"
            f"{validation_fraction}/{test_fraction} with every split non-empty"
        )
    return splits


def write_split(
    path: str | Path, splits: dict[str, list[ImageRecord]], vocabulary: str,
    images_root: str | Path | None = None, **details: Any,
) -> str:
    """Write a split manifest and return its digest (paths relative to `images_root`, if given)."""
    digest = sha256_json({name: records_digest(splits[name]) for name in SPLITS} | {
        "vocabulary": vocabulary})
    write_json(path, {
        "digest": digest,
        "vocabulary": vocabulary,
        "rule": SPLIT_RULE,
        **details,
        **{name: [_stored(r, images_root) for r in splits[name]] for name in SPLITS},
    })
    return digest


def read_split(
    path: str | Path, images_root: str | Path | None = None
) -> tuple[dict[str, list[ImageRecord]], str]:
    """The train/validation/test records and the vocabulary of a split manifest (relative paths
    resolved against `images_root`)."""
    data = read_json(path)
    return ({name: [_loaded(r, images_root) for r in data[name]] for name in SPLITS},
            data["vocabulary"])


def split_membership(path: str | Path) -> dict[str, Any]:
    """Which images (by content hash) a split manifest puts in each split, and by which rule."""
    data = read_json(path)
    return {"rule": data.get("rule"), "seed": data.get("seed"),
            **{name: sorted(r["sha256"] for r in data[name]) for name in SPLITS}}


def split_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per split: images that joined it, left it, and moved into it from another split."""
    known = {sha: name for name in SPLITS for sha in before.get(name, [])}
    changes = {}
    for name in SPLITS:
        now = set(after[name])
        changes[name] = {
            "joined": sum(1 for sha in now if sha not in known),
            "moved_in": sum(1 for sha in now if known.get(sha, name) != name),
            "left": sum(1 for sha in before.get(name, []) if sha not in now),
            "images": len(now),
        }
    return changes
