"""Served runs: whether this flow run was started by the Prefect server, and what it may do.

"Served" means the run belongs to a deployment (its form, an automation, a schedule, the API);
such a run's parameters come from whoever reaches the server. A local run (the CLI, a Python
program calling a flow) has no deployment and keeps its freedom.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from uuid import UUID

import httpx
from pydantic import BaseModel

from ocr_core.guards.allowed_roots import allowed_roots, check_served_paths
from tasks.served_limits import ServedLimits, check_served_limits, serve_flag


def is_served() -> bool:
    """True inside a flow run (or its tasks, also on Dask workers) that belongs to a deployment."""
    from prefect.runtime import deployment

    return deployment.id is not None


def served_allowed_roots() -> list[str] | None:
    """The allowed roots when this run is served; None for a local run (no confinement)."""
    return allowed_roots() if is_served() else None


def confine_served_run(params: BaseModel) -> None:
    """In a served run, before any work: refuse every path outside the allowed roots and a
    results root other than the served one (`ocr_core.guards.allowed_roots.check_served_paths`),
    another Dask cluster and any size over the served limits (`tasks.served_limits`); then start
    the run's time budget. A no-op locally."""
    if not is_served():
        return
    check_served_paths(params)
    limits = ServedLimits.from_environ()
    check_served_limits(params, limits)
    start_time_budget(limits.max_run_minutes)


def start_time_budget(minutes: float) -> threading.Timer | None:
    """Cancel the current flow run through the API once it has run `minutes`.

    Only a top-level run starts a budget (a subflow is inside its parent's). Cancelling is
    Prefect's own: the process that runs the flow run (`serve`, a worker) sees the state and
    stops the run's process group, local Dask workers included; every output is written whole or
    not at all (`ocr_core.files.atomic_path`), so a stopped run leaves nothing half-written.
    The timer runs in the run's context: it reaches the server the run reports to, not the
    process's default one.
    """
    from prefect.context import FlowRunContext
    from prefect.logging import get_run_logger

    run = FlowRunContext.get()
    if run is None or run.flow_run is None or run.flow_run.parent_task_run_id:
        return None
    timer = threading.Timer(minutes * 60, contextvars.copy_context().run,
                            args=(cancel_flow_run, run.flow_run.id, minutes, get_run_logger()))
    timer.daemon = True
    timer.start()
    return timer


CANCEL_ATTEMPTS = 4  # the server may be busy when the budget runs out; each retry waits longer


def cancel_flow_run(flow_run_id: UUID, minutes: float,
                    logger: logging.Logger | logging.LoggerAdapter) -> bool:
    """Ask the server to cancel a flow run that exceeded its time budget (a finished one stays);
    True once the server accepted it. Errors reaching the server are retried, then logged."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import PrefectException
    from prefect.states import Cancelling

    message = (f"exceeded the served time budget of {minutes:g} minutes; an administrator can "
               f"raise it with `ocr-pipeline serve {serve_flag('max_run_minutes')}`")
    announced = False
    for attempt in range(CANCEL_ATTEMPTS):
        try:
            with get_client(sync_client=True) as client:
                if client.read_flow_run(flow_run_id).state.is_final():
                    return False
                if not announced:
                    logger.error("the run %s: cancelling it", message)
                    announced = True
                result = client.set_flow_run_state(flow_run_id, Cancelling(message=message))
            if result.status == SetStateStatus.ACCEPT:
                return True
            problem = f"the server answered {result.status.value}: {result.details}"
        except (httpx.HTTPError, PrefectException) as error:
            problem = f"{type(error).__name__}: {error}"
        if attempt + 1 < CANCEL_ATTEMPTS:
            time.sleep(2 ** attempt)
    logger.error("could not cancel the run past its time budget (%s); cancel it from the UI or "
                 "with `prefect flow-run cancel %s`", problem, flow_run_id)
    return False
