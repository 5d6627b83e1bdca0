"""A step on its results root: local files in, keys out.

A step function works on local files, as `ocr_core` does. `RootedStep` wraps it: before the
call, every location of every record it is given is made local (`Root.pull`: nothing to do on a
local root; a copy from the store in the scratch cache otherwise) and `results_dir` becomes the
root's local folder; after it, each file or folder the returned record names as its output is
pushed to the root whole, stamped, and named by its key again. So the same step runs on a laptop
folder, or on a worker that shares nothing with the others but the bucket.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocr_core.storage import Root, is_url, open_root
from tasks.records import Output, is_key

_CURRENT_ROOT: contextvars.ContextVar[Root] = contextvars.ContextVar("results_root")


def current_root() -> Root:
    """The results root of the step running now (inside a `RootedStep` with a `results_dir`)."""
    try:
        return _CURRENT_ROOT.get()
    except LookupError:
        raise RuntimeError("current_root() is only known inside a step on a results root") from None


def located(results_dir: str | os.PathLike[str], location: str) -> str:
    """Where a record's location is, for people: a key under the root becomes its path or URL."""
    return open_root(results_dir).location(location) if is_key(location) else location


class Staging:
    """The local copies one call reads, and the locations they stand for."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self.origins: dict[str, str] = {}  # local path -> the URL it was copied from
        self.keys: list[str] = []  # keys pulled from the root

    def local(self, location: str) -> str:
        """A local path for `location` (a key, a URL or a local path)."""
        if is_key(location):
            self.keys.append(location)
            return str(self.root.pull(location))
        if is_url(location):
            path = str(open_root(location).pull(""))
            self.origins[path] = location
            return path
        return location

    def localized(self, value: Any) -> Any:
        """`value` with every record's locations made local (other values as they are)."""
        if isinstance(value, Output):
            return value.moved(self.local)
        if isinstance(value, list | tuple):
            return type(value)(self.localized(item) for item in value)
        return value

    def stored(self, location: str) -> str:
        """The location to record for a local path: its key under the root, or the URL a
        staged copy came from, or the path itself."""
        for path, origin in self.origins.items():
            if location == path or location.startswith(path.rstrip("/") + "/"):
                return origin + location[len(path):]
        key = self.root.key_of(location)
        return key if key is not None else location

    def published(self, record: Output) -> Output:
        """`record` named by keys, with each output pushed to the root and stamped."""
        record = record.moved(self.stored)
        stamps = dict(record.stamps)
        for output in record.outputs():
            if output and is_key(output):
                stamp = self.root.push(output)
                if stamp is None:
                    raise FileNotFoundError(f"step wrote no file at {self.root.location(output)}")
                stamps[output] = stamp
        for output in record.optional_outputs():
            if is_key(output) and (stamp := self.root.push(output)) is not None:
                stamps[output] = stamp
        return dataclasses.replace(record, stamps=stamps)


class RootedStep:
    """A step function run on its results root (see the module's docstring). A class rather
    than a closure, so the task pickles (Dask workers).

    Functions without a `results_dir` (or called with None) run as they are.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        functools.update_wrapper(self, function)
        self.__prefect_task_source__ = function  # Prefect's task key: the function's own code
        self.function = function

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        bound = inspect.signature(self.function).bind(*args, **kwargs)
        bound.apply_defaults()
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(self.bind(args, kwargs))

    def run(self, bound: inspect.BoundArguments) -> Any:
        """Call the function with `bound` arguments, on the root of their `results_dir`."""
        results_dir = bound.arguments.get("results_dir")
        if results_dir is None:
            return self.function(*bound.args, **bound.kwargs)
        root = open_root(results_dir)
        staging = Staging(root)
        arguments = {name: staging.localized(value) for name, value in bound.arguments.items()}
        arguments["results_dir"] = Path(root.local)
        given = {id(arguments[name]): value for name, value in bound.arguments.items()
                 if isinstance(value, Output)}
        token = _CURRENT_ROOT.set(root)
        try:
            with root.pinned(staging.keys):
                result = self.function(**arguments)
        finally:
            _CURRENT_ROOT.reset(token)
        if id(result) in given:  # a record passed through, as it was given
            return given[id(result)]
        return staging.published(result) if isinstance(result, Output) else result


def on_root(function: Callable[..., Any]) -> RootedStep:
    """Decorator form of `RootedStep` (for tasks that are not cached steps)."""
    return RootedStep(function)
