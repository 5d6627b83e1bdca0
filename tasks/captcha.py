"""Prefect tasks of the captcha OCR pipeline: thin wrappers over `ocr_core` that read and write files.

Each task writes under the results root, into a folder named by its content key, atomically, and
returns a small record. Retried network steps live in `tasks.download`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import tempfile
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from ocr_core.captcha.synthetic import CaptchaShard
from ocr_core.data import dataset as ds
from ocr_core.errors import DataError
from ocr_core.files import atomic_path, sha256_file, sha256_json, write_json
from ocr_core.layout import ResultsLayout
from ocr_core.storage import Root, is_url, open_root, root_url
from ocr_core.storage.scratch import work_dir
from tasks.caching import cached_task, current_step_key
from tasks.code_identity import includes_code_of
from tasks.logs import run_logger
from tasks.record_store import record_key
from tasks.records import Datasets, ImageFolder, Manifest, Split
from tasks.roots import current_root
from tasks.workers import current_worker


def generated_key(num_samples: int, seed: int) -> str:
    """The key of the generation of `num_samples` captchas from `seed`: named by the step key
    of `collect_captchas`, which records it."""
    key = collect_captchas.fn.step_key({"num_samples": num_samples, "seed": seed})
    return f"data/synthetic/{key}"


def rendered_count(root: Root, key: str) -> int:
    """How many captchas the folder `key` of `root` holds now."""
    return sum(1 for name in root.files(key) if name.endswith(".png") and "/" not in name)


def generation_lock(root: Root, key: str) -> contextlib.AbstractContextManager[None]:
    """Hold the lock of generation `key` on `root` (two runs at once render it once)."""
    return root.lock(f"render-{key.rsplit('/', 1)[-1]}").held()


def forget_collected(root: Root, key: str) -> None:
    """Remove the stored record of generation `key`, which is about to be rendered again (its
    files' stamps will differ: the record must not stand for them)."""
    root.remove(record_key(key.rsplit("/", 1)[-1]))


@task(cache_policy=NO_CACHE, retries=1)
def render_captcha_shard(shard: CaptchaShard, target: str, processes: int = 1) -> int:
    """Render one shard of a generation into `target`: a local folder, or a store URL the
    shard's images are uploaded to (so a worker needs no disk in common with the others).

    Args:
        processes: render processes; 1 inside a daemonic process (a Dask worker), which may
            not start children.
    """
    from ocr_core.captcha.synthetic import render_shard

    if multiprocessing.current_process().daemon:
        processes = 1
    run_logger().info("rendering %d captchas (chunks from %d, seed %d) on %s",
                      len(shard.labels), shard.first_chunk, shard.seed, current_worker())
    if not is_url(target):
        return len(render_shard(target, shard, workers=processes))
    store = open_root(target)
    with tempfile.TemporaryDirectory(prefix="render-", dir=work_dir()) as folder:
        rendered = render_shard(folder, shard, workers=processes)
        store.put(Path(folder), "")
    return len(rendered)


@cached_task()
@includes_code_of(render_captcha_shard)  # the images it collects are rendered there
def collect_captchas(num_samples: int, seed: int, results_dir: Path) -> ImageFolder:
    """The record of a complete generation (rendered shard by shard by the generate flow).

    Raises:
        DataError: the folder is missing or holds another number of images.
    """
    root = current_root()
    key = generated_key(num_samples, seed)
    found = rendered_count(root, key)
    if found != num_samples:
        raise DataError(f"{root.location(key)} holds {found} generated captchas, expected "
                        f"{num_samples}")
    return ImageFolder(key, step_key=current_step_key(), count=num_samples)


# NO_CACHE: it reads the folder's files to make the key the later steps are cached by.
@task(cache_policy=NO_CACHE)
def fingerprint_folder(folder: str | Path) -> ImageFolder:
    """Describe a user's folder of captchas (a path or a store URL) by the content of its PNGs
    (not cached: it is the key)."""
    location = root_url(folder)
    paths = ds.list_pngs(open_root(location).pull(""))
    digest = sha256_json([[p.name, sha256_file(p)] for p in paths])
    return ImageFolder(location, content_digest=digest, count=len(paths))


@cached_task()
def split_dataset(
    manifest: Manifest, seed: int, validation_fraction: float, test_fraction: float,
    results_dir: Path,
) -> Split:
    """Split the manifest reproducibly into train/validation/test."""
    records, vocabulary = ds.read_manifest(manifest.path, manifest.images_root or None)
    splits = ds.split_records(records, validation_fraction=validation_fraction,
                              test_fraction=test_fraction, seed=seed)
    key = current_step_key()
    path = ResultsLayout(results_dir).manifests / f"split-{key}.json"
    digest = ds.write_split(path, splits, vocabulary, images_root=manifest.images_root or None,
                            seed=seed, source_manifest=manifest.content_digest)
    counts = {name: len(splits[name]) for name in ds.SPLITS}
    run_logger().info("split %s", counts)
    return Split(str(path), content_digest=digest, counts=counts, vocabulary=vocabulary,
                 images_root=manifest.images_root)


@cached_task()
def build_datasets(split: Split, recipe: str, results_dir: Path) -> Datasets:
    """Decode and resize every split once for the recipe's input size; save as tf.data snapshots."""
    from ocr_core.captcha.ctc import Vocabulary
    from ocr_core.captcha.input_sizes import input_size
    from ocr_core.captcha.pipeline import save_split

    spec = input_size(recipe)
    records, vocabulary = ds.read_split(split.path, split.images_root or None)
    max_length = max(len(r.label) for rs in records.values() for r in rs)
    key = current_step_key()
    target = ResultsLayout(results_dir).datasets / key
    chars = Vocabulary(vocabulary)
    with atomic_path(target, is_dir=True) as tmp:
        for name in ds.SPLITS:
            save_split(records[name], chars, tmp / name, height=spec.height, width=spec.width,
                       max_label_length=max_length)
        write_json(tmp / "datasets.json", {"split": split.content_digest, "height": spec.height,
                                           "width": spec.width, "vocabulary": vocabulary,
                                           "max_label_length": max_length})
    run_logger().info("preprocessed %s at %dx%d into %s", split.counts, spec.width,
                          spec.height, target)
    return Datasets(str(target), step_key=key, height=spec.height, width=spec.width,
                    vocabulary=vocabulary, max_label_length=max_length, split_manifest=split.path,
                    images_root=split.images_root)
