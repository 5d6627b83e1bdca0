"""New labelled data retrains by itself: a real Prefect server, `serve` on a dataset folder, then
`ocr-pipeline ingest` twice within the debounce window (and once into a folder nobody watches).

The automation, not the test, creates exactly one `captcha-retrain` run; it trains on both
ingests' files and completes. The server and serve fixtures of test_server.py stop every process.
"""

from __future__ import annotations

import sys
import time

import pytest

from ocr_core.captcha.synthetic import generate_captchas
from ocr_core.data.ingest import dataset_resource_id
from ocr_core.registry import Registry
from tests.deployments.test_server import (  # noqa: F401 (server: a fixture)
    BIN,
    RUN_TIMEOUT,
    served_retrain,
    server,
    wait_until,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]

DEBOUNCE = 30  # seconds; two ingest commands (a few seconds each) fit in it


def test_two_ingests_in_the_window_start_one_retrain(server, tmp_path):  # noqa: F811
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, processes = server
    sizes = {"data": (40, 7), "held-out": (20, 8), "new-1": (5, 9), "new-2": (5, 10),
             "other-data": (5, 11), "new-other": (5, 12)}  # name: (captchas, seed)
    folders = {name: tmp_path / name for name in sizes}
    for name, (count, seed) in sizes.items():
        generate_captchas(folders[name], count, seed=seed)
    results = tmp_path / "results"
    serve = processes.start(
        "serve", sys.executable, "-m", "deployments.serve", "--results-dir", str(results),
        "--source", "dir", "--data-dir", str(folders["data"]),
        "--evaluation-dir", str(folders["held-out"]), "--epochs", "1",
        "--min-val-accuracy", "0", "--no-schedule", "--retrain-debounce", str(DEBOUNCE))

    def ingest(name: str, into: str) -> None:
        processes.run(str(BIN / "ocr-pipeline"), "ingest", str(folders[name]), "--data-dir",
                      str(folders[into]), "--results-dir", str(results))

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:

        deployment = served_retrain(client, serve, processes)
        (automation,) = wait_until(  # serve creates it right after the deployment
            lambda: [a for a in client.read_automations()
                     if [action.deployment_id for action in a.actions] == [deployment.id]] or None,
            30, lambda: f"no automation for {deployment.id}: {client.read_automations()}")

        def retrain_runs():
            return client.read_flow_runs(flow_filter=FlowFilter(
                name=FlowFilterName(any_=["captcha-retrain"])))

        ingest("new-other", "other-data")  # an event for a folder no deployment watches
        started = time.monotonic()
        ingest("new-1", "data")
        ingest("new-2", "data")
        assert time.monotonic() - started < DEBOUNCE, "the ingests took longer than the window"
        assert len(list(folders["data"].glob("*.png"))) == 50

        (run,) = wait_until(lambda: retrain_runs() or None, 60,
                            lambda: f"no retrain run:\n{processes.log('serve')}")
        assert run.created_by is not None and run.created_by.type == "AUTOMATION"
        assert run.created_by.id == automation.id
        assert run.parameters["params"]["data_dir"] == str(folders["data"].resolve())

        final = wait_until(lambda: s if (s := client.read_flow_run(run.id).state).is_final()
                           else None, RUN_TIMEOUT, lambda: processes.log("serve"), poll=2)
        assert final.name == "Completed", processes.log("serve")
        assert [r.id for r in retrain_runs()] == [run.id]  # one run for the burst, none for other

        # The Event Feed holds one event per ingest, each naming its dataset folder.
        events = client.read_events(EventFilter(event=EventNameFilter(
            name=["ocr-pipeline.dataset.updated"])), limit=50).events
        assert sorted(e.resource.id for e in events) == sorted(
            dataset_resource_id(folders[name]) for name in ("data", "data", "other-data"))
        assert sorted(e.payload["accepted"] for e in events) == [5, 5, 5]

    (version,) = Registry.of(results).versions()
    assert version.info["training_data"]["images"] == 50  # both ingests' files
    assert version.info["training_data"]["data_dir"] == str(folders["data"].resolve())
