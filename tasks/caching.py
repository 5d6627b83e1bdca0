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
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from pydantic import BaseModel

from ocr_core.files import sha256_json
from ocr_core.layout import default_results_dir
from ocr_core.storage import open_root
from tasks.code_identity import code_identity
from tasks.record_store import RecordSerializer, RecordStorage, RootLockManager
from tasks.records import Output
from tasks.roots import RootedStep
from tasks.step_policy import StepPolicy, refreshing


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


class KeyedStep(RootedStep):
    """A step function that knows its step key: `current_step_key()` inside it,
    `.step_key(parameters)` for the cache policy, both from the same call's parameters with
    defaults filled in. It runs on its results root (`tasks.roots.RootedStep`).

    One writer per key is Prefect's: the task's transaction is `SERIALIZABLE` with the root's
    lock manager (`step_task_options`), so a second run of the key waits, then reads the record.

    Args:
        function: the task's function.
        ignore: parameters that change how the step runs, not what it produces (a thread count).
    """

    def __init__(self, function: Callable[..., Any], ignore: Iterable[str] = ()) -> None:
        super().__init__(function)
        self.ignored = frozenset(ignore) | LOCATION_PARAMETERS

    def step_key(self, parameters: dict[str, Any]) -> str:
        bound = inspect.signature(self.function).bind_partial(**parameters)
        bound.apply_defaults()
        return step_key(self.function, **{name: value for name, value in bound.arguments.items()
                                          if name not in self.ignored})

    def run(self, bound: inspect.BoundArguments) -> Any:
        token = _CURRENT_KEY.set(self.step_key(dict(bound.arguments)))
        try:
            return super().run(bound)
        finally:
            _CURRENT_KEY.reset(token)


def keyed_step(ignore: Iterable[str] = ()) -> Callable[[Callable[..., Any]], KeyedStep]:
    """Decorator form of `KeyedStep`."""
    return lambda function: KeyedStep(function, ignore)


def refreshing_cache() -> bool:
    """Whether the task running now recomputes what is cached (a run with `refresh`)."""
    context = TaskRunContext.get()
    return context is not None and refreshing(context)


STEP = StepPolicy()
"""Cache policy of every task that writes files under the results root: its step key."""


def step_policy_when(cacheable: Callable[[dict[str, Any]], bool]) -> CachePolicy:
    """STEP for the calls whose parameters are `cacheable`; the others are never served from
    the cache (no key: the step runs every time)."""
    return StepPolicy(cacheable=cacheable)


def step_task_options(task: Task[..., Any], results_dir: Any) -> dict[str, Any]:
    """The options that put `task`'s records and locks on the root `results_dir`: JSON records
    in its `prefect-results`, and its own lock per key held from before the cache is read until
    the record is written (`SERIALIZABLE`)."""
    root = open_root(results_dir if results_dir is not None else default_results_dir())
    return {"result_storage": RecordStorage.on(root.url),
            "result_serializer": RecordSerializer(),
            "cache_policy": task.cache_policy.configure(lock_manager=RootLockManager(root.url),
                                                        isolation_level="SERIALIZABLE")}


class StepTask(Task):
    """A cached step's task: each call runs as a copy configured for its `results_dir`
    (`step_task_options`), so one process can run steps on several roots."""

    def for_root(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task[..., Any]:
        """The configured copy for a call with `args` and `kwargs` (extra Prefect keywords such
        as `wait_for` are ignored here)."""
        names = inspect.signature(self.fn).parameters
        given = {name: value for name, value in kwargs.items() if name in names}
        bound = inspect.signature(self.fn).bind_partial(*args, **given)
        return Task.with_options(self, **step_task_options(self, bound.arguments.get("results_dir")))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.for_root(args, kwargs)(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        return self.for_root(args, kwargs).submit(*args, **kwargs)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        return self.for_root(args, kwargs).map(*args, **kwargs)


def cached_task(
    ignore: Iterable[str] = (), cache_policy: CachePolicy = STEP, **options: Any
) -> Callable[[Callable[..., Any]], StepTask]:
    """`@task` for a step whose output is cached by its step key and persisted on its root.

    Args:
        ignore: parameters left out of the key (see `keyed_step`).
        cache_policy: STEP, or a `step_policy_when(...)`.
        options: further `prefect.task` options.
    """

    def decorate(function: Callable[..., Any]) -> StepTask:
        step = keyed_step(ignore)(function)
        CACHED_STEPS.append(step)
        return StepTask(step, cache_policy=cache_policy, persist_result=True, **options)

    return decorate


CACHED_STEPS: list[KeyedStep] = []
"""Every cached step defined (in modules imported so far)."""


def prepare_step_keys() -> None:
    """Read the code of every cached step now, on the calling thread (`code_identity` keeps
    it). Flows call it first: CPython 3.11's AST builder fails when two threads parse at once
    (python/cpython#106905), and TensorFlow's autograph parses source while a task traces, so
    no step key may need a first parse while tasks run on other threads."""
    for step in CACHED_STEPS:
        code_identity(step.function)
