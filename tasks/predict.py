"""Prefect tasks of the predict flow: pick the model, list the images, read them shard by shard,
join the parts into one results file.

Nothing here is cached: reading is about as fast as hashing the images for a key would be, and
each run's answer depends on which bundle is the champion now. Images and the results file are
paths or store URLs: a shard copies its store images into its worker's scratch cache. Parts are
written under the results root's `work/` (pushed to the store when the root is one, so workers
need no disk in common) and the results file only once every shard is read.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ocr_core.errors import DataError, ModelError, RegistryError
from ocr_core.registry import Registry, bundle_digest
from ocr_core.storage import is_url, local_copies, local_copy, open_root, root_url
from ocr_core.storage.scratch import work_dir
from tasks.links import artifact_link
from tasks.logs import run_logger
from tasks.records import Output
from tasks.workers import current_worker


@dataclass(frozen=True)
class ChosenModel(Output):
    """The bundle a predict run reads with: its folder, content digest and registry name."""

    name: str = ""


@dataclass(frozen=True)
class PredictionPart:
    """One shard's predictions: a part of the results file (no header), and who read it."""

    path: str
    count: int
    worker: str
    seconds: float


@task(cache_policy=NO_CACHE)
def choose_model(model: Path | None, results_dir: Path) -> ChosenModel:
    """The given bundle, or the registry's champion when none is given.

    Raises:
        ModelError: `model` is not a bundle.
        RegistryError: no model given and the registry has no champion, or the champion's
            files differ from the registry's record.
    """
    from ocr_core.bundle.folder import bundle_dir, describe_bundle

    if model is not None:
        local = local_copy(model, missing=ModelError)
        describe_bundle(local, kind="captcha")
        folder = bundle_dir(local)
        location = root_url(model)
        return ChosenModel(location.removesuffix("/model.keras"), bundle_digest(folder),
                           name=folder.name)
    registry = Registry.of(results_dir)
    champion = registry.champion()
    if champion is None:
        raise RegistryError(f"no model given and no champion in {registry.location} yet "
                            "(train one: ocr-pipeline retrain)")
    registry.verified(champion)
    run_logger().info("reading with the champion %s (%s)", champion.name, champion.location)
    return ChosenModel(champion.location, champion.digest, name=champion.name)


@task(cache_policy=NO_CACHE, persist_result=False)
def list_images(inputs: list[str]) -> list[str]:
    """The PNG files given and those in the given folders, paths or store URLs, in order (not
    opened: the shards check them where they are read).

    Raises:
        DataError: an input does not exist, or a folder holds no PNG (naming it).
        StorageError: no such bucket, or access denied (naming the URL).
    """
    from ocr_core.captcha.inference import list_input_locations

    paths = list_input_locations(inputs)
    run_logger().info("%d images in %d input(s)", len(paths), len(inputs))
    return paths


@task(cache_policy=NO_CACHE)
def parts_folder() -> str:
    """The key of a new folder for one run's parts, under the results root's `work/`."""
    return f"work/predict-{uuid.uuid4().hex[:12]}"


@functools.lru_cache(maxsize=2)
def _bundle(location: str, digest: str):
    """A loaded bundle, kept for the next shard this process reads with it: a read-only cache
    keyed by content, so a bundle replaced at the same location is loaded again, never mixed up.

    Raises:
        ModelError: the bundle's content is no longer `digest`.
    """
    from ocr_core.bundle.folder import load_bundle

    folder = local_copy(location, missing=ModelError)
    if bundle_digest(folder) != digest:
        raise ModelError(f"{location} changed while this predict run was reading with it")
    return load_bundle(folder, kind="captcha")


@task(cache_policy=NO_CACHE)
def read_shard(
    model: ChosenModel, paths: list[str], part: str, results_dir: str, output_format: str,
    decoder: str, beam_width: int, batch_size: int, threads: int | None = None,
) -> PredictionPart:
    """Read one shard of images with `model` and write its part of the results.

    Args:
        paths: the shard's images, paths or store URLs; a store's are copied into this worker's
            scratch cache first (one batched download per folder), and named by their URLs in
            the results and in errors.
        part: the key of the part file to write on the results root (whole).
        threads: TensorFlow threads for this worker; None keeps TensorFlow's defaults.

    Raises:
        DataError: an image is missing, not a PNG or cannot be decoded (the message names it).
    """
    from ocr_core.threads import configure_threads

    configure_threads(threads)  # before the imports below load the model code
    from ocr_core.captcha.inference import check_pngs, predict_files
    from ocr_core.captcha.prediction_files import write_part

    start = time.perf_counter()
    # Not pinned (one lock per image would be thousands of open files): the copies are the
    # cache's newest entries, and eviction takes the least recently used first.
    files = local_copies(paths)
    origins = {str(file): path for file, path in zip(files, paths, strict=True) if is_url(path)}
    try:
        check_pngs(files)
        bundle = _bundle(model.path, model.content_digest)
        predictions = predict_files(bundle, files, batch_size=batch_size, strategy=decoder,
                                    beam_width=beam_width)
    except DataError as error:
        raise DataError(_named_by_origin(str(error), origins)) from None
    if origins:
        predictions = [dataclasses.replace(p, path=origins.get(p.path, p.path))
                       for p in predictions]
    root = open_root(results_dir)
    write_part(predictions, root.local / part, output_format)  # type: ignore[arg-type]
    root.push(part)
    seconds = time.perf_counter() - start
    worker = current_worker()
    run_logger().info("read %d images in %.1f s (%.0f images/s) on %s", len(files), seconds,
                      len(files) / seconds, worker)
    return PredictionPart(part, len(files), worker, round(seconds, 3))


def _named_by_origin(message: str, origins: dict[str, str]) -> str:
    """`message` with the scratch copy it names replaced by the URL it was copied from."""
    for local in sorted(origins, key=len, reverse=True):  # longest first: no prefix of another
        if local in message:
            return message.replace(local, origins[local])
    return message


@task(cache_policy=NO_CACHE)
def join_predictions(parts: list[PredictionPart], output: str, output_format: str,
                     results_dir: str) -> str:
    """Write the results file from the parts, in input order, whole: a local file atomically
    (renamed into place), a store's object in one put of the complete bytes. Either way a failed
    or killed run leaves the previous file as it was.

    Raises:
        StorageError: no such bucket, or access denied (naming the URL).
    """
    from ocr_core.captcha.prediction_files import join_parts

    root = open_root(results_dir)
    local_parts = [root.pull(part.path) for part in parts]
    if is_url(output):
        folder, name = output.rsplit("/", 1)
        with tempfile.TemporaryDirectory(dir=work_dir()) as tmp:
            joined = join_parts(local_parts, Path(tmp) / name,
                                output_format)  # type: ignore[arg-type]
            open_root(folder).write_bytes(name, joined.read_bytes())
    else:
        join_parts(local_parts, output, output_format)  # type: ignore[arg-type]
    run_logger().info("wrote %d predictions to %s", sum(p.count for p in parts), output)
    return output


@task(cache_policy=NO_CACHE)
def remove_parts(folder: str, results_dir: str) -> None:
    """Remove a run's parts folder (after the results file is written, or after a failure)."""
    from ocr_core.files import remove_path

    root = open_root(results_dir)
    root.remove(folder)
    remove_path(root.local / folder)


@task(cache_policy=NO_CACHE)
def publish_predictions(
    parts: list[PredictionPart], output: str, model: ChosenModel, seconds: float
) -> dict[str, dict[str, float]]:
    """A markdown artifact: the results file, the model, and how the shards spread over workers.

    Returns the images, shards and reading seconds per worker.
    """
    images: Counter[str] = Counter()
    shards: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    for part in parts:
        images[part.worker] += part.count
        shards[part.worker] += 1
        busy[part.worker] += part.seconds
    total = sum(images.values())
    rows = "\n".join(f"| {worker} | {shards[worker]} | {images[worker]} | {busy[worker]:.1f} |"
                     for worker in sorted(images))
    create_markdown_artifact(
        key="captcha-predict",
        description="Where a predict run wrote its results, and which workers read the shards",
        markdown=(f"# Predictions\n\n{total} images read with {model.name} in {seconds:.1f} s "
                  f"({total / max(seconds, 1e-9):.0f} images/s, whole flow).\n\n"
                  f"Results: [{output.rsplit('/', 1)[-1]}]({artifact_link(output)})\n\n"
                  "| worker | shards | images | reading seconds |\n|---|---|---|---|\n" + rows))
    return {worker: {"shards": shards[worker], "images": images[worker],
                     "seconds": round(busy[worker], 1)} for worker in sorted(images)}
