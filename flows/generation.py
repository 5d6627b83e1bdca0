"""Generated captchas rendered in shards: one task run per shard, on whichever worker is free.

A generation is planned as fixed chunks of 250 images, each rendered from its own seed, and the
chunks are grouped into shards (`ocr_core.captcha.synthetic.plan_shards`): the bytes depend on the seed
only, never on the number of shards or workers. Every shard writes into one temporary folder
that is renamed into place when all succeeded, so a complete folder is the only one ever seen.
On the thread runner one shard renders with local processes (Python threads would share one
core); on Dask each worker renders shards in its own process (Dask workers are daemonic and may
not start process pools).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from prefect import flow
from prefect.futures import wait
from prefect.logging import get_run_logger

from flows.runners import run_on_chosen_runner, worker_slots
from ocr_core.captcha.synthetic import CaptchaShard, plan_shards
from ocr_core.config import RunnerParams
from ocr_core.files import atomic_path, remove_path
from ocr_core.storage import Root, open_root
from ocr_core.threads import available_cpus
from tasks.captcha import (
    collect_captchas,
    forget_collected,
    generated_key,
    generation_lock,
    render_captcha_shard,
    rendered_count,
)
from tasks.records import ImageFolder

SHARDS_PER_WORKER = 4  # several shards per worker keep all busy to the end


def render_captchas(root: Root, key: str, num_samples: int, seed: int) -> None:
    """Render `num_samples` captchas from `seed` into folder `key` of `root`: on a local root
    into a new folder renamed into place (or file by file into an existing one); on a store,
    each shard uploads its own images."""
    slots = worker_slots()
    shards = plan_shards(num_samples, seed, 1 if slots is None else SHARDS_PER_WORKER * slots)
    processes = min(2, available_cpus()) if slots is None else 1
    get_run_logger().info("generating %d captchas (seed %d) in %d shard(s) into %s",
                          num_samples, seed, len(shards), root.location(key))
    if not root.is_local:
        _render_shards(root.location(key), shards, processes)
        return
    target = root.local / key if key else root.local
    if not target.is_dir():
        with atomic_path(target, is_dir=True) as tmp:
            _render_shards(str(tmp), shards, processes)
        return
    incoming = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:12]}"
    incoming.mkdir()
    try:  # into an existing folder: render aside, then move the files in
        _render_shards(str(incoming), shards, processes)
        root.put(incoming, key)
    finally:
        remove_path(incoming)


def _render_shards(target: str, shards: list[CaptchaShard], processes: int) -> None:
    futures = [render_captcha_shard.submit(shard, target, processes) for shard in shards]
    wait(futures)
    for future in futures:
        future.result()  # the first failed shard's error (the temporary folder is removed)


def generate_captchas(num_samples: int, seed: int, results_dir: str | Path) -> ImageFolder:
    """The generated captchas of `num_samples` and `seed`, rendered unless already complete.

    The folder is named by its content key, so a complete one is reused; `collect_captchas`
    (cached by content) turns it into the record later steps key on. Rendering holds the
    generation's lock on the root: two runs at once render once.
    """
    root = open_root(results_dir)
    key = generated_key(num_samples, seed)
    with generation_lock(root, key):
        if rendered_count(root, key) != num_samples:
            forget_collected(root, key)
            render_captchas(root, key, num_samples, seed)
        return collect_captchas(num_samples, seed, results_dir)


class GenerateParams(RunnerParams):
    """Parameters of the generate flow: how many captchas, from which seed, into which folder."""

    count: int
    seed: int
    out_dir: Path


@flow(name="generate-captchas")
def generate_captcha_folder(params: GenerateParams) -> int:
    """Write `count` seeded captchas into `out_dir`, shard by shard on the chosen runner."""
    if (handover := run_on_chosen_runner(generate_captcha_folder, params)) is not None:
        return handover()
    render_captchas(open_root(params.out_dir), "", params.count, params.seed)
    return params.count
