"""Served runs: whether this flow run was started by the Prefect server, and its path confinement.

"Served" means the run belongs to a deployment (its form, an automation, a schedule, the API);
such a run's parameters come from whoever reaches the server. A local run (the CLI, a Python
program calling a flow) has no deployment and keeps its freedom.
"""

from __future__ import annotations

from pydantic import BaseModel

from ocr_core.guards.allowed_roots import allowed_roots, check_served_paths


def is_served() -> bool:
    """True inside a flow run (or its tasks, also on Dask workers) that belongs to a deployment."""
    from prefect.runtime import deployment

    return deployment.id is not None


def served_allowed_roots() -> list[str] | None:
    """The allowed roots when this run is served; None for a local run (no confinement)."""
    return allowed_roots() if is_served() else None


def confine_served_run(params: BaseModel) -> None:
    """In a served run, refuse every path parameter outside the allowed roots and a results root
    other than the served one (`ocr_core.guards.allowed_roots.check_served_paths`); a no-op locally."""
    if is_served():
        check_served_paths(params)
