"""The cache policy of the steps that write under the results root, and when a record is served.

The key is the step key (`tasks.caching`). Whether a persisted record may be served is decided
here, before Prefect reads it: a record is usable when all its files exist under the current
call's roots. A record whose files are gone is marked expired (Prefect then runs the step and
overwrites it); one written under another results root or images folder is rewritten for the
current ones. Only Prefect's public `CachePolicy` and `ResultStore` are used.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.results import ResultStore
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE

from tasks.records import ImageFolder, Output

logger = logging.getLogger(__name__)


def refreshing(context: TaskRunContext) -> bool:
    """Whether the task run recomputes whatever is cached (`refresh_cache`, or the setting)."""
    refresh = context.task.refresh_cache
    return PREFECT_TASKS_REFRESH_CACHE.value() if refresh is None else refresh


def usable_record(store: ResultStore, key: str, inputs: dict[str, Any]) -> Output | None:
    """The record persisted under `key`, moved onto the current call's roots, if all its files
    are there; None when there is none or it points at files that are gone."""
    if not store.exists(key):
        return None
    record = store.read(key).result
    if not isinstance(record, Output):
        return None
    current = record.relocated(current_roots(record, inputs))
    return None if current.missing_files() else current


def current_roots(record: Output, inputs: dict[str, Any]) -> dict[str, str]:
    """Where the roots `record` was written under are for the call with `inputs`: its results
    root is the call's `results_dir`, its images root that of the images it was given."""
    moves = {}
    if record.root and inputs.get("results_dir") is not None:
        moves[record.root] = str(inputs["results_dir"])
    old_images = getattr(record, "images_root", "")
    new_images = next((root for value in inputs.values() if (root := _images_root(value))), "")
    if old_images and new_images:
        moves[old_images] = new_images
    # the longest first: an images folder inside the results root moves with its own root
    return {old: new for old, new in sorted(moves.items(), key=lambda item: -len(item[0]))
            if old != new}


def _images_root(value: Any) -> str:
    if isinstance(value, ImageFolder):
        return value.path
    return getattr(value, "images_root", "") if isinstance(value, Output) else ""


@dataclasses.dataclass
class StepPolicy(CachePolicy):
    """Cache policy of every task that writes files under the results root: its step key.

    A record persisted under the key is served only if its files are there (under the current
    roots); one that points at files that are gone is marked expired, so the step computes
    again. One written under another results root or images folder is rewritten for the
    current ones, so a moved root or a copied folder keeps its cache hits.

    Args:
        cacheable: when given, calls whose parameters it rejects get no key (they always run).
    """

    cacheable: Callable[[dict[str, Any]], bool] | None = None

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.cacheable is not None and not self.cacheable(inputs):
            return None
        key_of = getattr(task_ctx.task.fn, "step_key", None)
        if key_of is None:
            raise TypeError(f"task {task_ctx.task.name} has a StepPolicy but no @keyed_step")
        key = key_of(inputs)
        store = task_ctx.result_store
        if not refreshing(task_ctx) and store.exists(key):
            _serve_only_usable(store, key, inputs)
        return key


def _serve_only_usable(store: ResultStore, key: str, inputs: dict[str, Any]) -> None:
    record = store.read(key).result
    if not isinstance(record, Output):
        return
    current = record.relocated(current_roots(record, inputs))
    if missing := current.missing_files():
        logger.info("step %s: its cached files are gone (%s); computing it again", key,
                    ", ".join(missing))
        store.write(obj=record, key=key, expiration=datetime.datetime.now(datetime.UTC))
    elif current != record:
        logger.info("step %s: cached record moved onto %s", key, current.root or current.path)
        store.write(obj=current, key=key)
