"""A run's `refresh` parameter: every cached step of that run is recomputed, in any runner."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

F = TypeVar("F", bound=Callable[..., Any])


def honour_refresh(flow_function: F) -> F:
    """Run a flow function with Prefect's refresh switch on when its `params.refresh` is true.

    The switch is a setting in the run's context, not the environment: it reaches the tasks the
    flow calls or submits (threads and Dask workers get the flow's settings context) and leaves
    other runs in the process alone. Put it under `@flow`.
    """
    signature = inspect.signature(flow_function)

    @functools.wraps(flow_function)
    def run(*args: Any, **kwargs: Any) -> Any:
        params = signature.bind(*args, **kwargs).arguments.get("params")
        if not getattr(params, "refresh", False):
            return flow_function(*args, **kwargs)
        with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
            return flow_function(*args, **kwargs)

    # Prefect builds the run form and validates parameters from the signature: give it the
    # annotations resolved in the flow's module (this module cannot resolve them as strings).
    run.__signature__ = inspect.signature(flow_function, eval_str=True)  # type: ignore[attr-defined]
    run.__annotations__ = typing.get_type_hints(flow_function)
    return run  # type: ignore[return-value]
