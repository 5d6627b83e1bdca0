"""The logger a task writes to: Prefect's run logger inside a run, a plain logger outside one."""

from __future__ import annotations

import logging

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger in a flow or task run; `logging.getLogger("tasks")` elsewhere, so a
    task's logic runs through `.fn(...)` from plain Python too."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tasks")
