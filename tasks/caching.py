"""Content-keyed caching for tasks: same inputs and same code give a cache hit, in any flow run.

The key hashes the task's name, each input's content token (a record's digest, a parameter's
value), the `ocr_core` code version and, through TASK_SOURCE, the task's own source. Prefect's
TASK_SOURCE alone would miss edits in `ocr_core`, and a `Path` would be hashed as its name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext
from pydantic import BaseModel

from ocr_core import code_version
from ocr_core.files import sha256_json
from tasks.records import Output


def content_token(value: Any) -> Any:
    """A JSON-able stand-in for `value` that changes exactly when its content does."""
    if isinstance(value, Output):
        return {"type": type(value).__name__, "digest": value.digest}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return content_token(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): content_token(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [content_token(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot build a cache key from a {type(value).__name__}; pass a record or a path")


def step_key(step: str, **inputs: Any) -> str:
    """The content key of a step's inputs; also names the step's output folder."""
    return sha256_json({"step": step, "code": code_version(),
                        "inputs": content_token(inputs)})[:24]


def _key_from_context(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return step_key(context.task.name, **parameters)


CONTENT = TASK_SOURCE + CachePolicy.from_cache_key_fn(_key_from_context)
"""Cache policy for every task that writes files under the results root."""


def content_ignoring(*names: str) -> CachePolicy:
    """CONTENT, leaving out parameters that change how a step runs, not what it produces
    (a thread count, say), so changing them is still a cache hit."""

    def key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return _key_from_context(context, {k: v for k, v in parameters.items() if k not in names})

    return TASK_SOURCE + CachePolicy.from_cache_key_fn(key)
