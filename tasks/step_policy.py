"""The cache policy of the steps that write under the results root, and when a record is served.

The key is the step key (`tasks.caching`). Whether a stored record may be served is decided
here, before Prefect reads it: a record is usable while every output it names is on the root
with the stamp it was written with (`ocr_core.storage.stamps`: a listing, never a read of the
bytes). A record whose outputs are gone or changed is removed, and its changed outputs with it
(Prefect then runs the step and writes a new one). One that indexed images in a user's folder
that has moved since is rewritten for the folder given now. The records are read from the
root's `prefect-results` (`tasks.record_store`), never unpickled.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE

from ocr_core.layout import default_results_dir
from ocr_core.storage import Root, open_root
from tasks.record_store import read_record, record_key, rewrite_record
from tasks.records import ImageFolder, Output, is_key

logger = logging.getLogger(__name__)


def refreshing(context: TaskRunContext) -> bool:
    """Whether the task run recomputes whatever is cached (`refresh_cache`, or the setting)."""
    refresh = context.task.refresh_cache
    return PREFECT_TASKS_REFRESH_CACHE.value() if refresh is None else refresh


def changed_outputs(record: Output, root: Root) -> list[str]:
    """The outputs of `record` that are gone from `root` or differ from their stamps (an output
    without a stamp counts as changed: a record from before stamps)."""
    stamped = [output for output in record.outputs() if output and is_key(output)]
    stamped += [output for output in record.stamps if output not in stamped]
    return [output for output in stamped if root.stamp(output) != record.stamps.get(output)]


def images_moves(record: Output, inputs: dict[str, Any]) -> dict[str, str]:
    """The move of the user's images folder `record` indexed onto the one given now, if any."""
    old = getattr(record, "images_root", "")
    new = next((root for value in inputs.values() if (root := _images_root(value))), "")
    return {old: new} if old and new and old != new and not is_key(old) else {}


def _images_root(value: Any) -> str:
    if isinstance(value, ImageFolder):
        return value.path
    return getattr(value, "images_root", "") if isinstance(value, Output) else ""


@dataclasses.dataclass
class StepPolicy(CachePolicy):
    """Cache policy of every task that writes files under the results root: its step key.

    A record stored under the key is served only while its outputs are there with their
    stamps. Otherwise the outputs that changed are taken out of use (`Root.discard`) and the
    record removed, under the key's lock, so the step computes again from nothing. One that
    indexed images in a folder that moved is rewritten for the current folder.

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
        if not refreshing(task_ctx):
            serve_only_usable(open_root(inputs.get("results_dir") or default_results_dir()), key,
                              inputs)
        return key


def serve_only_usable(root: Root, key: str, inputs: dict[str, Any]) -> None:
    """Leave step `key`'s stored record only if Prefect may serve it for a call with `inputs`."""
    found = read_record(root, key)
    if found is None:
        return
    raw, record = found
    if changed_outputs(record, root):
        with root.lock(key).held():  # not while a run of the key is writing its outputs
            found = read_record(root, key)
            if found is not None and (changed := changed_outputs(found[1], root)):
                logger.info("step %s: its cached files are gone or changed (%s); computing it "
                            "again", key, ", ".join(root.location(output) for output in changed))
                for output in changed:
                    root.discard(output)
                root.remove(record_key(key))
    elif moves := images_moves(record, inputs):
        logger.info("step %s: cached record moved onto the images in %s", key,
                    next(iter(moves.values())))
        rewrite_record(root, key, raw, record.relocated(moves))
