"""Served runs as an attacker with access to the run form and the event stream would try them,
on a real server with authentication: paths outside the allowed roots and another results root
are refused before anything is written; an event naming another folder does not train on it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime

import pytest

from ocr_core.captcha.synthetic import generate_captchas
from ocr_core.data.ingest import DATASET_UPDATED_EVENT, dataset_resource_id
from ocr_core.registry import Registry
from tests.deployments.test_authenticated_server import AUTH, auth_server  # noqa: F401 (fixture)
from tests.deployments.test_server import RUN_TIMEOUT, served_retrain, wait_until

pytestmark = [pytest.mark.server, pytest.mark.slow]


def tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


async def post_events(events) -> None:
    from prefect.events.clients import get_events_client

    async with get_events_client() as client:
        for event in events:
            await client.emit(event)


def test_form_values_and_events_cannot_reach_outside(auth_server, tmp_path):  # noqa: F811
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.deployments import run_deployment
    from prefect.events import Event
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    url, processes = auth_server
    data, held_out, other = tmp_path / "data", tmp_path / "held-out", tmp_path / "other"
    for folder, count, seed in ((data, 40, 7), (held_out, 20, 8), (other, 40, 9)):
        generate_captchas(folder, count, seed=seed)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.csv").write_text("precious\n")
    before = tree(outside), tree(other)
    results = tmp_path / "results"
    serve = processes.start(
        "serve", sys.executable, "-m", "deployments.serve", "--results-dir", str(results),
        "--source", "dir", "--data-dir", str(data), "--evaluation-dir", str(held_out),
        "--epochs", "1", "--min-val-accuracy", "0", "--no-schedule", "--retrain-debounce", "2",
        "--limit", "3")

    with temporary_settings({PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: AUTH}), \
            get_client(sync_client=True) as client:
        served_retrain(client, serve, processes)  # `serve` works with the string

        attempts = {
            "output": {"inputs": [str(data)], "output": str(outside / "victim.csv")},
            "inputs[0]": {"inputs": [str(other)], "output": str(results / "p.csv")},
            "results_dir": {"results_dir": str(tmp_path / "elsewhere"), "inputs": [str(data)],
                            "output": str(results / "q.csv")},
        }
        runs = {name: run_deployment("captcha-predict/predict", parameters={"params": params},
                                     timeout=0) for name, params in attempts.items()}

        def finished():
            states = {name: client.read_flow_run(run.id).state for name, run in runs.items()}
            return states if all(state.is_final() for state in states.values()) else None

        states = wait_until(finished, 300, lambda: processes.log("serve"), poll=2)
        for name, state in states.items():
            assert state.is_failed(), (name, state)
        assert f"output={outside / 'victim.csv'} is outside the allowed roots" in \
            states["output"].message
        assert f"inputs[0]={other} is outside" in states["inputs[0]"].message
        assert "is not this deployment's results root" in states["results_dir"].message
        assert (tree(outside), tree(other)) == before  # nothing written, nothing read into results
        assert not (tmp_path / "elsewhere").exists()
        assert not (results / "p.csv").exists() and not (results / "q.csv").exists()

        # Events: one for the watched folder whose payload names another, one for another folder.
        spoofed = Event(event=DATASET_UPDATED_EVENT, id=uuid.uuid4(), occurred=datetime.now(UTC),
                        resource={"prefect.resource.id": dataset_resource_id(data)},
                        payload={"data_dir": str(other)})
        elsewhere = Event(event=DATASET_UPDATED_EVENT, id=uuid.uuid4(), occurred=datetime.now(UTC),
                          resource={"prefect.resource.id": dataset_resource_id(other)},
                          payload={"data_dir": str(other)})
        asyncio.run(post_events([spoofed, elsewhere]))

        def retrain_runs():
            return client.read_flow_runs(flow_filter=FlowFilter(
                name=FlowFilterName(any_=["captcha-retrain"])))

        (run,) = wait_until(lambda: retrain_runs() or None, 120,
                            lambda: f"no retrain run:\n{processes.log('serve')}")
        assert run.parameters["params"]["data_dir"] == str(data)
        final = wait_until(lambda: s if (s := client.read_flow_run(run.id).state).is_final()
                           else None, RUN_TIMEOUT, lambda: processes.log("serve"), poll=2)
        assert final.name == "Completed", processes.log("serve")
        assert [r.id for r in retrain_runs()] == [run.id]

    (version,) = Registry.of(results).versions()
    assert version.info["training_data"]["data_dir"] == str(data)
    assert version.info["training_data"]["images"] == 40
    assert tree(other) == before[1]
