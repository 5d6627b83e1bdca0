"""A step's identity: one key that is both its Prefect cache key and the name of its output folder.

The key of a step (a task function called with some inputs) hashes:

- the step's name (module and function);
- its inputs' content (`content_token`): a record's `identity` (its content digest, else its step
  key), a parameter's value, leaving out the parameters a step declares as not changing its
  output (a thread count) and where it writes (`results_dir`: moving the results root keeps
  every key);
- the code the step runs and the versions of the libraries that code imports
  (`tasks.code_identity`: an edit to `ocr_core/captcha/models.py` retrains but does not regenerate).

Prefect's TASK_SOURCE is not used: it hashes the decorated function's body only, and a second
key beside this one would let two cache entries point at one folder.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from pydantic import BaseModel

from ocr_core.cache.locks import step_lock
from ocr_core.files import sha256_json
from tasks.code_identity import code_identity
from tasks.records import Output
from tasks.step_policy import StepPolicy, refreshing, usable_record


def content_token(value: Any) -> Any:
    """A JSON-able stand-in for `value` that changes exactly when its content does."""
    if isinstance(value, Output):
        return {"type": type(value).__name__, "identity": value.identity}
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


# Keys


def step_key(function: Callable[..., Any], /, **inputs: Any) -> str:
    """The identity of `function` run on `inputs`: its cache key and its output folder's name."""
    function = inspect.unwrap(function)
    return sha256_json({
        "step": f"{function.__module__}.{function.__qualname__}",
        **code_identity(function),
        "inputs": content_token(inputs),
    })[:24]


LOCATION_PARAMETERS = frozenset({"results_dir"})
"""Parameters that say where a step writes, never what: left out of every key."""

_CURRENT_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("step_key")


def current_step_key() -> str:
    """The key of the step running now (inside a function decorated with `keyed_step`)."""
    try:
        return _CURRENT_KEY.get()
    except LookupError:
        raise RuntimeError("current_step_key() is only known inside a @keyed_step function") from None


class KeyedStep:
    """A task function that knows its step key: `current_step_key()` inside it,
    `.step_key(parameters)` for the cache policy, both from the same call's parameters with
    defaults filled in. A class rather than a closure, so the task pickles (Dask workers).

    A call with a `results_dir` holds that key's lock (`ocr_core.cache.locks`) while it runs; a call that
    waited for the lock uses the record the holder persisted, if it is usable, instead of
    computing again. The record it returns names that results root as its `root`.

    Args:
        function: the task's function.
        ignore: parameters that change how the step runs, not what it produces (a thread count).
    """

    def __init__(self, function: Callable[..., Any], ignore: Iterable[str] = ()) -> None:
        functools.update_wrapper(self, function)
        self.__prefect_task_source__ = function  # Prefect's task key: the function's own code
        self.function = function
        self.ignored = frozenset(ignore) | LOCATION_PARAMETERS

    def step_key(self, parameters: dict[str, Any]) -> str:
        bound = inspect.signature(self.function).bind_partial(**parameters)
        bound.apply_defaults()
        return step_key(self.function, **{name: value for name, value in bound.arguments.items()
                                          if name not in self.ignored})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(self.function).bind(*args, **kwargs)
        bound.apply_defaults()
        key = self.step_key(dict(bound.arguments))
        root = bound.arguments.get("results_dir")
        token = _CURRENT_KEY.set(key)
        try:
            if root is None:
                return self.function(*args, **kwargs)
            with step_lock(root, key):
                result = _persisted_meanwhile(key, bound.arguments)
                if result is None:
                    result = self.function(*args, **kwargs)
        finally:
            _CURRENT_KEY.reset(token)
        if isinstance(result, Output) and not result.root:
            result = dataclasses.replace(result, root=str(root))
        return result


def keyed_step(ignore: Iterable[str] = ()) -> Callable[[Callable[..., Any]], KeyedStep]:
    """Decorator form of `KeyedStep`."""
    return lambda function: KeyedStep(function, ignore)


def refreshing_cache() -> bool:
    """Whether the task running now recomputes what is cached (a run with `refresh`)."""
    context = TaskRunContext.get()
    return context is not None and refreshing(context)


def _persisted_meanwhile(key: str, inputs: dict[str, Any]) -> Output | None:
    """The usable record another process persisted under `key` while this one waited for the
    lock (None outside a task run, when the run refreshes the cache, and for a call its task's
    policy does not cache, such as a served run's download)."""
    context = TaskRunContext.get()
    if context is None or refreshing(context):
        return None
    policy = context.task.cache_policy
    if isinstance(policy, StepPolicy) and policy.cacheable and not policy.cacheable(inputs):
        return None
    return usable_record(context.result_store, key, inputs)


STEP = StepPolicy()
"""Cache policy of every task that writes files under the results root: its step key."""


def step_policy_when(cacheable: Callable[[dict[str, Any]], bool]) -> CachePolicy:
    """STEP for the calls whose parameters are `cacheable`; the others are never served from
    the cache (no key: the step runs every time)."""
    return StepPolicy(cacheable=cacheable)


def cached_task(
    ignore: Iterable[str] = (), cache_policy: CachePolicy = STEP, **options: Any
) -> Callable[[Callable[..., Any]], Task[..., Any]]:
    """`@task` for a step whose output is cached by its step key and persisted.

    Args:
        ignore: parameters left out of the key (see `keyed_step`).
        cache_policy: STEP, or a `step_policy_when(...)`.
        options: further `prefect.task` options.
    """

    def decorate(function: Callable[..., Any]) -> Task[..., Any]:
        return task(cache_policy=cache_policy, persist_result=True,
                    **options)(keyed_step(ignore)(function))

    return decorate
