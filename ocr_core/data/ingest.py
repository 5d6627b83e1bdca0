"""Take new labelled captchas into a dataset folder: check them like training does, then move them.

A plan decides, file by file, what may enter the dataset: the file must pass the training
validation (`ocr_core.data.validation`: PNG, size, mode, label pattern, no two incoming files with the
same bytes), and it must be new to the dataset: no file there holds the same bytes, and no file
there has its name (a label clash is refused, never overwritten). Accepted files are then moved
one by one, atomically: copied to a hidden temporary name inside the dataset folder, flushed to
disk, linked to the final name (which fails if that name appeared meanwhile) and only then removed
from the source. A crash leaves at most a hidden `.ingest-*` file, which `list_pngs` ignores.

The event that announces an update names the dataset by `dataset_resource_id`, the same function
the retrain deployment's trigger uses to match it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ocr_core.data.dataset import list_pngs
from ocr_core.data.validation import ImageSpec, validate_folder
from ocr_core.errors import ConfigError, DataError
from ocr_core.files import sha256_file

logger = logging.getLogger(__name__)

DATASET_UPDATED_EVENT = "ocr-pipeline.dataset.updated"
DATASET_RESOURCE_PREFIX = "ocr-pipeline.dataset."
_TEMPORARY_PREFIX = ".ingest-"


def dataset_folder(folder: str | Path) -> Path:
    """The canonical absolute form of a dataset folder (symbolic links resolved)."""
    return Path(folder).expanduser().resolve()


def dataset_resource_id(folder: str | Path) -> str:
    """The Prefect resource id of a dataset folder: `ocr-pipeline.dataset.<absolute path>`."""
    return DATASET_RESOURCE_PREFIX + str(dataset_folder(folder))


@dataclass(frozen=True)
class IngestPlan:
    """What an ingest will do: source files to move (by name) and refused files with reasons."""

    source_dir: str
    data_dir: str
    checked: int
    accepted: list[str]
    refused: dict[str, list[str]]
    dataset_images: int  # files in the dataset before the ingest


@dataclass
class IngestOutcome:
    """What an ingest did; `refused` includes files the plan accepted that could not be moved."""

    source_dir: str
    data_dir: str
    checked: int
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)
    dataset_images: int = 0  # files in the dataset after the ingest

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"checked {self.checked} images in {self.source_dir}: {len(self.accepted)} moved "
                f"into {self.data_dir}, {len(self.refused)} refused; the dataset now holds "
                f"{self.dataset_images} images")


def _pngs_or_none(folder: Path) -> list[Path]:
    """The PNGs in an existing folder; none is not an error here (an empty review queue)."""
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    try:
        return list_pngs(folder)
    except DataError:
        return []


def plan_ingest(source_dir: str | Path, data_dir: str | Path, spec: ImageSpec | None = None,
                held_out: Mapping[str, str] | None = None) -> IngestPlan:
    """Decide which PNGs directly in `source_dir` may enter `data_dir`, and why others may not.

    `held_out` (file name by content hash) is the evaluation set models are compared on: an
    image with the same bytes is refused, since training on it would void every comparison.
    Other files (a review queue's `review.jsonl`, hidden files, sub-folders) are ignored.

    Raises:
        DataError: a folder is missing.
        ConfigError: both folders are the same.
    """
    source = dataset_folder(source_dir)
    target = dataset_folder(data_dir)
    if source == target:
        raise ConfigError(f"the source and the dataset are the same folder: {source}")
    if not target.is_dir():
        raise DataError(f"--data-dir is not a folder: {target}")
    incoming = _pngs_or_none(source)
    existing = _pngs_or_none(target)
    if not incoming:
        return IngestPlan(str(source), str(target), 0, [], {}, len(existing))
    report = validate_folder(source, spec, policy="skip")
    refused = {name: list(problems) for name, problems in report.problems.items()}
    by_digest = {sha256_file(path): path.name for path in existing}
    names = {path.name for path in existing}
    accepted = []
    held_out = held_out or {}
    for name in report.accepted:
        reasons = []
        digest = sha256_file(source / name)
        if (evaluation_twin := held_out.get(digest)) is not None:
            reasons.append(f"same bytes as {evaluation_twin} in the evaluation set, which no "
                           "model may train on")
        if (twin := by_digest.get(digest)) is not None:
            reasons.append(f"same bytes as {twin}, already in the dataset")
        elif name in names:
            reasons.append(f"name clash: {name} is already in the dataset with other bytes")
        if reasons:
            refused[name] = reasons
        else:
            accepted.append(name)
    return IngestPlan(str(source), str(target), report.checked, accepted,
                      dict(sorted(refused.items())), len(existing))


def move_into(source: Path, folder: Path) -> Path:
    """Move one file into `folder` under its own name, atomically and without overwriting.

    Copy to a hidden temporary file in `folder`, fsync it, hard-link it to the final name (an
    existing name makes that fail: nothing is overwritten), then drop the temporary name, fsync
    the folder and remove `source`.

    Raises:
        FileExistsError: `folder` already has a file of that name.
    """
    target = folder / source.name
    tmp = folder / f"{_TEMPORARY_PREFIX}{uuid.uuid4().hex[:12]}-{source.name}"
    try:
        with open(source, "rb") as reader, open(tmp, "xb") as writer:
            shutil.copyfileobj(reader, writer)
            writer.flush()
            os.fsync(writer.fileno())
        _publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_folder(folder)
    source.unlink()
    return target


def _publish(tmp: Path, target: Path) -> None:
    """Give `tmp` the name `target` unless that name exists (a hard link is atomic and no-clobber)."""
    try:
        os.link(tmp, target)
    except OSError as error:
        if error.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "already in the dataset", str(target)) from None
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: check, then rename (a race can still overwrite).
        if target.exists():
            raise FileExistsError(errno.EEXIST, "already in the dataset", str(target)) from None
        os.rename(tmp, target)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def carry_out(plan: IngestPlan) -> IngestOutcome:
    """Move the plan's accepted files into the dataset; a file that cannot move is refused."""
    source, target = Path(plan.source_dir), Path(plan.data_dir)
    outcome = IngestOutcome(plan.source_dir, plan.data_dir, plan.checked,
                            refused={k: list(v) for k, v in plan.refused.items()})
    for name in plan.accepted:
        try:
            move_into(source / name, target)
        except FileExistsError:
            outcome.refused[name] = [f"name clash: {name} appeared in the dataset meanwhile"]
        except OSError as error:
            outcome.refused[name] = [f"could not move: {error}"]
        else:
            outcome.accepted.append(name)
    if len(outcome.accepted) < len(plan.accepted):
        logger.warning("%d of %d accepted files could not be moved into %s",
                       len(plan.accepted) - len(outcome.accepted), len(plan.accepted), target)
    outcome.refused = dict(sorted(outcome.refused.items()))
    outcome.dataset_images = len(_pngs_or_none(target))
    return outcome


def event_payload(outcome: IngestOutcome, report_path: str | Path | None = None) -> dict[str, Any]:
    """The counts an update event carries, plus the dataset folder the retrain trigger passes on."""
    payload: dict[str, Any] = {
        "data_dir": outcome.data_dir,
        "accepted": len(outcome.accepted),
        "refused": len(outcome.refused),
        "dataset_images": outcome.dataset_images,
    }
    if report_path is not None:
        payload["report"] = str(report_path)
    return payload


def report_markdown(outcome: IngestOutcome, max_rows: int = 50) -> str:
    """The ingest report as markdown, for a Prefect artifact and a file beside the JSON."""
    lines = ["# Captcha ingest", "", f"{outcome.summary().capitalize()}.", ""]
    if outcome.accepted:
        lines += ["## Accepted", "", ", ".join(f"`{name}`" for name in outcome.accepted[:max_rows])]
        if len(outcome.accepted) > max_rows:
            lines.append(f"... and {len(outcome.accepted) - max_rows} more in the JSON report")
        lines.append("")
    if outcome.refused:
        lines += ["## Refused", "", "| file | reasons |", "|---|---|"]
        names = list(outcome.refused)
        lines += [f"| {name} | {'; '.join(outcome.refused[name])} |" for name in names[:max_rows]]
        if len(names) > max_rows:
            lines.append(f"| ... | {len(names) - max_rows} more in the JSON report |")
        lines.append("")
    return "\n".join(lines)
