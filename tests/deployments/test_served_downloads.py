"""Downloads of a served captcha run, as whoever fills in the run form would try them, on a real
server: a local file outside the allowed roots, a redirect from the allowed mirror to another
loopback port, and bodies over the size limit are refused, and nothing is left in the results root.
"""

from __future__ import annotations

import random
import sys
from urllib.parse import urlsplit

import pytest

from ocr_core.guards.targets import ALLOW_PRIVATE_HOSTS_ENV
from tests.deployments.test_server import running_server, served_retrain, wait_until
from tests.fault_server import FaultServer, Reply

pytestmark = [pytest.mark.server, pytest.mark.slow]

BIG = random.Random(3).randbytes(2 * 2**20 + 1)


def test_form_urls_cannot_reach_files_the_network_or_the_disk(file_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    secret = tmp_path / "home" / "keys.zip"
    secret.parent.mkdir()
    secret.write_bytes(b"PK\x05\x06" + bytes(18))
    mirror = urlsplit(file_server.url("/")).netloc  # the one private host the admin allowed
    results = tmp_path / "results"
    with FaultServer() as internal, running_server(
            tmp_path, {ALLOW_PRIVATE_HOSTS_ENV: mirror}) as (url, processes):
        internal_url = internal.script("/latest/meta-data", Reply(body=b"credentials"))
        urls = {
            "file": secret.as_uri(),
            "redirect": file_server.script("/data.zip",
                                           Reply(302, headers={"Location": internal_url})),
            "announced": file_server.script("/big.zip", Reply(body=BIG)),
            "unannounced": file_server.script("/stream.zip", Reply(body=BIG, announce_length=False)),
        }
        serve = processes.start(
            "serve", sys.executable, "-m", "deployments.serve", "--results-dir", str(results),
            "--no-schedule", "--limit", "4")
        with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
            served_retrain(client, serve, processes)
            runs = {name: run_deployment("captcha-ocr/captcha", timeout=0, parameters={"params": {
                "source": "url", "url": target, "download_attempts": 1, "download_timeout": 10,
                "download_max_mib": 2}}) for name, target in urls.items()}

            def finished():
                states = {name: client.read_flow_run(run.id).state for name, run in runs.items()}
                return states if all(state.is_final() for state in states.values()) else None

            states = wait_until(finished, 300, lambda: processes.log("serve"), poll=2)
        for name, state in states.items():
            assert state.is_failed(), (name, state, processes.log("serve"))
        assert f"url={secret} is outside the allowed roots" in states["file"].message
        assert "loopback address): a served run" in states["redirect"].message
        assert "it announces 2097153 bytes, over the download size limit" in \
            states["announced"].message
        assert "the body is longer, over the download size limit" in states["unannounced"].message
        assert internal.hits("/latest/meta-data") == []
    assert len(file_server.hits("/data.zip")) == 1
    assert [p for p in (results / "data").rglob("*") if p.is_file()] == []
