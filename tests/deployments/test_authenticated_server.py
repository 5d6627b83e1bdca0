"""A shared server with Prefect's basic auth on (`PREFECT_SERVER_API_AUTH_STRING`), tried the way
an outsider and a colleague would: the API and the events websockets refuse requests without the
string; the CLI, a Dask worker and a flow run on it work with it; a wrong string is one line
naming the setting to set. Processes are started and stopped by test_server.py's helpers.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from ocr_core.captcha.synthetic import generate_captchas
from tests.deployments.test_server import BIN, PROJECT_ROOT, free_port, running_server, wait_until

pytestmark = [pytest.mark.server, pytest.mark.slow]

AUTH = f"team:{uuid.uuid4().hex}"


@pytest.fixture
def auth_server(tmp_path):
    """A server that demands AUTH; every process the test starts is given AUTH too."""
    with running_server(tmp_path, {"PREFECT_SERVER_API_AUTH_STRING": AUTH,
                                   "PREFECT_API_AUTH_STRING": AUTH}) as started:
        yield started


def status_without_credentials(url: str, method: str, path: str, body: object = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def probe_event(name: str) -> dict:
    return {"occurred": datetime.datetime.now(datetime.UTC).isoformat(), "event": name,
            "resource": {"prefect.resource.id": "ocr-pipeline.probe"}, "id": str(uuid.uuid4())}


async def websocket_attempt(socket_url: str, token: str | None, subprotocol: bool = True,
                            send: dict | None = None) -> str:
    """How the server answers a websocket client: 'accepted' or why it refused."""
    from websockets.asyncio.client import connect

    try:
        async with connect(socket_url, subprotocols=["prefect"] if subprotocol else None,
                           open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "auth", "token": token}))
            reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if send is not None:
                await socket.send(json.dumps(send))
                await asyncio.sleep(1)
            return "accepted" if reply == {"type": "auth_success"} else str(reply)
    except Exception as error:  # the refusals differ: HTTP 403, close 1008
        return f"refused: {error}"


def test_outsiders_are_refused_and_colleagues_with_the_string_work(auth_server, tmp_path,
                                                                   mnist_dir):
    from distributed import Client
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    url, processes = auth_server
    # Without the string: every API call is refused, health probes excepted.
    assert status_without_credentials(url, "GET", "/health") == 200
    assert status_without_credentials(url, "POST", "/flows/filter", {}) == 401
    assert status_without_credentials(url, "POST", "/deployments/filter", {}) == 401
    assert status_without_credentials(url, "POST", "/events", [probe_event("probe.http")]) == 401

    # The events websockets (Prefect 3.9.1: an auth message after the `prefect` subprotocol).
    events_in = url.replace("http://", "ws://") + "/events/in"
    attempts = {
        "legacy client": asyncio.run(websocket_attempt(
            events_in, None, subprotocol=False, send=probe_event("probe.legacy"))),
        "no token": asyncio.run(websocket_attempt(events_in, None, send=probe_event("probe.none"))),
        "wrong token": asyncio.run(websocket_attempt(events_in, "team:wrong",
                                                     send=probe_event("probe.wrong"))),
        "right token": asyncio.run(websocket_attempt(events_in, AUTH,
                                                     send=probe_event("probe.right"))),
        "subscriber, no token": asyncio.run(websocket_attempt(
            url.replace("http://", "ws://") + "/events/out", None)),
    }
    assert attempts["right token"] == "accepted", attempts
    assert all(answer.startswith("refused") for name, answer in attempts.items()
               if name != "right token"), attempts
    assert "403" in attempts["legacy client"] and "Invalid token" in attempts["wrong token"]

    with temporary_settings({PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: AUTH}), \
            get_client(sync_client=True) as client:

        def probes():
            names = {e.event for e in client.read_events(EventFilter(event=EventNameFilter(
                prefix=["probe."])), limit=50).events}
            return names or None

        assert wait_until(probes, 30, lambda: "no probe event stored") == {"probe.right"}

    # The CLI with a wrong or missing string: one line saying which setting to set, nothing run.
    incoming, dataset = tmp_path / "incoming", tmp_path / "dataset"
    generate_captchas(incoming, 5, seed=3)
    dataset.mkdir()
    ingest = [str(BIN / "ocr-pipeline"), "ingest", str(incoming), "--data-dir", str(dataset),
              "--results-dir", str(tmp_path / "results")]
    for env in ({"PREFECT_API_AUTH_STRING": "team:wrong"}, {"PREFECT_API_AUTH_STRING": ""}):
        refused = subprocess.run(ingest, cwd=PROJECT_ROOT, env=processes.env | env,
                                 capture_output=True, text=True, timeout=180)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"Error: the Prefect server at {url} refused the credentials (401 Unauthorized): set "
            "PREFECT_API_AUTH_STRING to the server's PREFECT_SERVER_API_AUTH_STRING "
            "(USER:PASSWORD; see docs/security.md)"], refused.stderr
    assert len(list(incoming.glob("*.png"))) == 5  # nothing moved

    # With the string: the flow runs and reports to the server.
    processes.run(*ingest)
    assert len(list(dataset.glob("*.png"))) == 5

    # Dask: a worker with a wrong string refuses to start; one with the string runs the tasks.
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes.start("scheduler", str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                    "--port", str(port), "--no-dashboard")
    worker_args = ["worker", address, "--nworkers", "1", "--nthreads", "1", "--memory-limit",
                   "3GiB", "--no-dashboard", "--preload", "flows.environment"]
    good_env = processes.env
    processes.env = good_env | {"PREFECT_API_AUTH_STRING": "team:wrong"}
    stranger = processes.start("worker-wrong", str(BIN / "dask"), *worker_args, "--name", "wrong")
    processes.env = good_env
    processes.start("worker", str(BIN / "dask"), *worker_args, "--name", "colleague")
    assert wait_until(lambda: stranger.poll(), 180, lambda: processes.log("worker-wrong")) != 0
    refusal = (processes.logs / "worker-wrong.log").read_text()
    assert f"Error: the Prefect server at {url} refused the credentials" in refusal
    assert "set PREFECT_API_AUTH_STRING" in refusal
    with Client(address, timeout=60) as dask:
        dask.wait_for_workers(1, timeout=180)
        workers = dask.scheduler_info()["workers"].values()
        assert [worker["name"] for worker in workers] == ["colleague"]

    results = tmp_path / "mnist-results"
    processes.env["PREFECT_LOCAL_STORAGE_PATH"] = str(results / "prefect-results")
    processes.run(str(BIN / "ocr-pipeline"), "mnist", "--source", "local", "--mnist-path",
                  str(mnist_dir), "--models", "dense", "--epochs", "1", "--min-val-accuracy", "0",
                  "--dask-address", address, "--results-dir", str(results), timeout=600)
    with temporary_settings({PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: AUTH}), \
            get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["mnist"])))
        assert run.state.name == "Completed"
        (ingested,) = client.read_flow_runs(flow_filter=FlowFilter(
            name=FlowFilterName(any_=["captcha-ingest"])))
        assert ingested.state.name == "Completed"
    assert Path(results).is_dir()
