"""The one place that picks the task runner of every flow that fans out (sweep, mnist, predict).

- neither flag: Prefect's thread pool; the flows run at most `max_workers` trainings (or
  shards) at a time on it;
- `dask_workers=N`: a Dask LocalCluster started for the run (N processes, one thread each, a
  memory limit, no dashboard) and stopped after it;
- `dask_address=tcp://HOST:PORT`: an existing Dask cluster; nothing is started or stopped.

A flow gets its runner at call time, `flow.with_options(task_runner=task_runner_for(params))`;
a deployment run starts on the flow's default runner and hands itself over once
(`run_on_chosen_runner`), so the UI's run form picks the runner too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from ocr_core.config import RunnerParams
from ocr_core.errors import ConfigError
from ocr_core.threads import available_cpus

R = TypeVar("R")

TASKS_PER_TRAINING = 3
"""Pool threads per training on the thread runner: the training, and its check and evaluation
submitted right after it. A submitted task holds a pool thread while it waits for its inputs, so
a pool of only `max_workers` threads would run the trainings one at a time; the flows cap the
trainings (and shards) themselves at `max_workers` (`wait_for_a_free_slot`)."""


class SizedThreadPool(ThreadPoolTaskRunner):
    """A thread runner that says how many threads it has (`size`): Prefect keeps that private."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers=max_workers)
        self.size = max_workers


def thread_pool(max_workers: int) -> SizedThreadPool:
    """The thread runner for `max_workers` trainings (or shards) at a time."""
    return SizedThreadPool(max_workers=max_workers * TASKS_PER_TRAINING)


def task_runner_for(params: RunnerParams, load_tensorflow: bool = True) -> TaskRunner:
    """The task runner `params` asks for (nothing is started until a flow enters it).

    Args:
        load_tensorflow: local Dask workers import TensorFlow quietly when they start
            (`flows.environment.dask_setup`), before a training task would, noisily.
    """
    if params.runner_kind == "threads":
        return thread_pool(params.max_workers)
    from prefect_dask import DaskTaskRunner

    if params.runner_kind == "dask":
        return DaskTaskRunner(address=params.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": params.dask_workers, "threads_per_worker": 1,
                        "processes": True, "memory_limit": params.dask_memory_limit,
                        "dashboard_address": None,
                        "preload": ["flows.environment"] if load_tensorflow else []},
    )


def describe_runner(params: RunnerParams) -> str:
    """One line for the console: where the tasks will run."""
    if params.runner_kind == "dask":
        return f"tasks run on the Dask cluster at {params.dask_address}"
    if params.runner_kind == "local-dask":
        return (f"tasks run on a local Dask cluster of {params.dask_workers} worker processes "
                "(one thread each)")
    return f"tasks run on threads, at most {params.max_workers} at a time"


def start_up_warnings(
    params: RunnerParams, folder: Path, folder_given: str | os.PathLike | None,
    environ: Mapping[str, str] = os.environ, check_env: bool = True,
) -> list[str]:
    """What a user should know before a Dask run starts.

    Args:
        params: the run's runner choice.
        folder: the (absolute) folder the run writes to: the results root, or generate's OUT_DIR.
        folder_given: that folder as typed, None when not given (then $OCR_PIPELINE_RESULTS or
            ./ocr-results decides, when `check_env`).
        environ: the environment the run (and a local cluster's workers) sees.
        check_env: the folder defaults to $OCR_PIPELINE_RESULTS (the results root).
    """
    from ocr_core.layout import RESULTS_ENV
    from ocr_core.storage import is_url

    warnings = []
    typed = folder_given if folder_given is not None or not check_env else environ.get(RESULTS_ENV)
    local = not is_url(str(folder))
    if params.runner_kind == "dask" and local and (
            typed is None or not Path(typed).expanduser().is_absolute()):
        warnings.append(
            f"{folder} was resolved against this machine's current folder; the workers of "
            f"{params.dask_address} read and write it at that same path, so it must be on storage "
            "they all mount there (give an absolute path on shared storage)")
    if params.runner_kind == "dask" and not environ.get("PREFECT_API_URL"):
        warnings.append(
            "PREFECT_API_URL is not set: every Dask worker without it starts its own temporary "
            "Prefect server (slow, and their task runs are not shown with this flow run); start "
            "`prefect server start` and set PREFECT_API_URL here and on the workers")
    return warnings


@contextmanager
def api_for_local_workers(params: RunnerParams) -> Iterator[str | None]:
    """Give a local Dask cluster's workers the Prefect server this process reports to.

    Without PREFECT_API_URL every process starts its own temporary server: each worker would
    write its task runs into its own database. For a local cluster, one temporary server is
    started here instead and its URL exported, so the workers (spawned after this) and this
    process share it. Yields the URL, or None when nothing was needed.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if params.runner_kind != "local-dask" or get_current_settings().api.url:
        yield None
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def run_on_chosen_runner(flow: Any, params: RunnerParams) -> Callable[[], R] | None:
    """None when the current flow run already runs on the runner `params` asks for; otherwise a
    call that runs `flow` again, as a subflow, on that runner (a deployment run from the UI).

    Any thread pool at least as large as `thread_pool(max_workers)` will do: the flows
    themselves keep at most `max_workers` trainings running on threads (`wait_for_a_free_slot`).
    """
    context = FlowRunContext.get()
    current = context.task_runner if context else None
    wanted = task_runner_for(params)
    if isinstance(wanted, SizedThreadPool) and isinstance(current, ThreadPoolTaskRunner):
        if (getattr(current, "size", None) or 0) >= (wanted.size or 0):  # unknown: too small
            return None
    elif current is not None and runner_key(current) == runner_key(wanted):
        return None
    return lambda: flow.with_options(task_runner=wanted)(params)


def training_limit(params: RunnerParams, submitted: int) -> int:
    """Trainings to keep running at once: max_workers on threads; on Dask all of them (the
    scheduler queues them for its free workers)."""
    return params.max_workers if params.runner_kind == "threads" else max(1, submitted)


def wait_for_a_free_slot(running: list[PrefectFuture], limit: int) -> None:
    """Block until fewer than `limit` of the `running` futures are unfinished (removes the
    finished ones from the list)."""
    while len(running) >= limit:
        running.remove(next(as_completed(running)))


def runner_key(runner: TaskRunner) -> tuple:
    """What makes two task runners run tasks in the same place (worker preloads aside)."""
    if isinstance(runner, ThreadPoolTaskRunner):
        return ("threads", getattr(runner, "size", None))
    if type(runner).__name__ == "DaskTaskRunner":
        cluster = {k: v for k, v in runner.cluster_kwargs.items() if k != "preload"}
        return ("dask", runner.address, str(runner.cluster_class), sorted(cluster.items()))
    return (type(runner).__name__,)


def _dask_client() -> Any | None:
    """The Dask client of the current flow run's runner, or None on threads."""
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if runner is None or type(runner).__name__ != "DaskTaskRunner":
        return None
    return runner.client


def worker_slots() -> int | None:
    """Tasks the current flow run's Dask cluster runs at once (its worker threads); None on threads."""
    client = _dask_client()
    if client is None:
        return None
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return max(1, sum(int(info.get("nthreads", 1)) for info in workers.values()))


def training_threads() -> int | None:
    """TensorFlow threads for each training task of the current flow run.

    On threads: None (TF's defaults: one process, whose TF thread pools concurrent trainings
    share without oversubscribing). On Dask: the CPUs of a worker's host divided by the task
    slots (worker threads) on that host, the smallest over hosts; 1 for workers of one thread
    each on a host with as many CPUs as workers.
    """
    client = _dask_client()
    if client is None:
        return None
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cpus = client.run(available_cpus)  # {worker address: CPUs its process may use}
    slots: dict[str, int] = {}
    host_cpus: dict[str, int] = {}
    for address, info in workers.items():
        host = info.get("host", address)
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        host_cpus[host] = max(host_cpus.get(host, 1), int(cpus.get(address, 1)))
    if not slots:
        return 1
    return max(1, min(host_cpus[host] // slots[host] for host in slots))


def check_workers_see(results_dir: str | Path) -> None:
    """On Dask, make sure every worker sees a local results root at the same path (a store
    root is seen by every worker that has its credentials).

    A probe file is written here and looked for by every worker.

    Raises:
        ConfigError: naming the workers that cannot see it.
    """
    from ocr_core.storage import is_url

    client = _dask_client()
    if client is None or is_url(str(results_dir)):
        return
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    probe = results_dir / f".worker-probe-{uuid.uuid4().hex[:12]}"
    probe.write_text("every Dask worker must see this file\n")
    try:
        seen = client.run(os.path.exists, str(probe))
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(address for address, found in seen.items() if not found)
    if blind:
        raise ConfigError(
            f"Dask workers {', '.join(blind)} cannot see the results root {results_dir}: put it "
            "on storage every worker mounts at the same path (--results-dir)")
    if not seen:
        raise ConfigError("the Dask cluster has no workers")
