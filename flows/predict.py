"""The predict flow: read a folder of captchas of any size in shards, on whichever worker is free,
into one results file.

The images (paths or store URLs) are listed once, cut into shards of `shard_size`, and each
shard is one task run that loads the bundle (once per worker process), reads its images (a
store's copied to the worker first) and writes a part file under the results root. The results
file (CSV or JSON lines, in input order; a path or a store URL) is written from the parts when
every shard succeeded, whole: a failed or killed run leaves the previous file, if any.
"""

from __future__ import annotations

import time

from prefect import flow
from prefect.futures import wait
from pydantic import BaseModel

from flows.runners import (
    check_workers_see,
    run_on_chosen_runner,
    thread_pool,
    training_limit,
    training_threads,
    wait_for_a_free_slot,
)
from ocr_core.config import PredictParams
from tasks.predict import (
    choose_model,
    join_predictions,
    list_images,
    parts_folder,
    publish_predictions,
    read_shard,
    remove_parts,
)
from tasks.served import confine_served_run


class PredictSummary(BaseModel):
    """Where the predictions went and how the work spread over the workers."""

    output: str
    images: int
    shards: int
    model: str
    seconds: float
    workers: dict[str, dict[str, float]]


@flow(name="captcha-predict", task_runner=thread_pool(2))
def captcha_predict(params: PredictParams) -> PredictSummary:
    """Read every image of `params.inputs` with one model into the results file `params.output`."""
    confine_served_run(params)
    if (handover := run_on_chosen_runner(captcha_predict, params)) is not None:
        return handover()
    start = time.perf_counter()
    check_workers_see(params.results_dir)
    model = choose_model(params.model, params.results_dir)
    paths = list_images(params.inputs)
    shards = [paths[i:i + params.shard_size] for i in range(0, len(paths), params.shard_size)]
    folder = parts_folder()
    threads = training_threads()
    limit, running, futures = training_limit(params, len(shards)), [], []
    try:
        for number, shard in enumerate(shards):
            wait_for_a_free_slot(running, limit)  # on threads, at most max_workers shards at once
            if any(f.state.is_failed() for f in futures if f not in running):
                break  # the run fails with that shard's error: read no more
            futures.append(read_shard.submit(
                model, shard, f"{folder}/part-{number:06d}.{params.output_format}",
                params.results_dir, params.output_format, params.decoder, params.beam_width,
                params.batch_size, threads))
            running.append(futures[-1])
        wait(futures)
        parts = [future.result() for future in futures]  # raises the first failed shard's error
        output = join_predictions(parts, params.output, params.output_format, params.results_dir)
    finally:
        remove_parts(folder, params.results_dir)
    seconds = time.perf_counter() - start
    workers = publish_predictions(parts, output, model, seconds)
    return PredictSummary(output=output, images=len(paths), shards=len(shards), model=model.name,
                          seconds=round(seconds, 1), workers=workers)
