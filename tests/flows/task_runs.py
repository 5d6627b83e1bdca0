"""A finished flow run's task runs, read from the test Prefect server."""

import time

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun


def final_task_runs(flow_run_id) -> list[TaskRun]:
    """The flow run's task runs, once each has a final state: task run states reach the server
    as events, a moment after the flow run ends (gives up waiting after about 10 s)."""
    with get_client(sync_client=True) as client:
        for _ in range(50):
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if all(run.state is not None and run.state.is_final() for run in runs):
                break
            time.sleep(0.2)
    return runs


def task_states(flow_run_id) -> dict[str, str]:
    """Each task's name (without its run's suffix) -> the name of its final state."""
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in final_task_runs(flow_run_id)}
