"""Served runs compute only where and as much as `serve` allows: the real flows, run as a
deployment's run (Prefect's runtime variable), are refused before any work; local runs are not."""

from __future__ import annotations

import re
import socket
import time
import uuid

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext

from ocr_core.config import CaptchaParams, MnistParams, PredictParams, RetrainParams, SweepParams
from ocr_core.errors import ConfigError
from tasks.served import confine_served_run
from tasks.served_limits import ServedLimits, check_served_limits, env_name


@pytest.fixture
def served(monkeypatch, results_dir):
    """Runs from here on count as a deployment's, served with the results root and the defaults."""
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", str(uuid.uuid4()))
    monkeypatch.setenv("OCR_PIPELINE_RESULTS", str(results_dir))
    monkeypatch.delenv("OCR_PIPELINE_ALLOWED_ROOTS", raising=False)
    for name in ServedLimits.model_fields:
        monkeypatch.delenv(env_name(name), raising=False)
    return monkeypatch


@pytest.fixture
def listener():
    """A TCP listener on loopback that records whether anything connected."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        yield server


def no_work_in(results_dir) -> bool:
    """Nothing under the results root but Prefect's record of the failed run."""
    return not results_dir.exists() or [p.name for p in results_dir.iterdir()] == ["prefect-results"]


def nothing_connected(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return True
    connection.close()
    return False


class TestTheClusterIsTheServers:
    def test_a_served_predict_naming_a_scheduler_is_refused_before_connecting(
            self, prefect_server, served, results_dir, captcha_dir, listener):
        from flows.predict import captcha_predict

        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        params = PredictParams(results_dir=results_dir, inputs=[results_dir],
                               output=results_dir / "p.csv", dask_address=address)
        start = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"dask_address={address} is not the served Dask "
                           r"cluster \(none is served\).*serve --dask-address"):
            captcha_predict(params)
        print(f"refused in {time.perf_counter() - start:.2f} s (flow run included)")
        assert nothing_connected(listener)
        assert no_work_in(results_dir)

    def test_the_served_cluster_is_allowed_and_another_is_not(self, listener):
        served = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        limits = ServedLimits(dask_address=served)
        check_served_limits(SweepParams(dask_address=served), limits)
        check_served_limits(SweepParams(), limits)  # threads: fewer machines, within max_workers
        with pytest.raises(ConfigError, match=rf"tcp://10.0.0.5:8786 is not the served Dask "
                           rf"cluster \({served}\)"):
            check_served_limits(SweepParams(dask_address="tcp://10.0.0.5:8786"), limits)

    def test_a_served_mnist_asking_for_200_workers_is_refused(self, prefect_server, served,
                                                              results_dir):
        from flows.mnist import mnist

        with pytest.raises(ConfigError, match=r"dask_workers=200 is over the served limit "
                           r"dask_workers=2; .*`ocr-pipeline serve --dask-workers`"):
            mnist(MnistParams(results_dir=results_dir, source="keras", dask_workers=200))
        assert no_work_in(results_dir)

    def test_fewer_workers_and_threads_than_served_are_allowed(self):
        limits = ServedLimits(dask_workers=4, max_workers=3)
        check_served_limits(SweepParams(dask_workers=4), limits)
        check_served_limits(SweepParams(max_workers=1), limits)
        with pytest.raises(ConfigError, match=r"max_workers=8 is over .* --max-workers"):
            check_served_limits(SweepParams(max_workers=8), limits)
        with pytest.raises(ConfigError, match="dask_workers=1 is over the served limit "
                           "dask_workers=0"):
            check_served_limits(SweepParams(dask_workers=1), ServedLimits(dask_workers=0))


class TestSizeLimits:
    def test_a_served_captcha_run_over_the_sample_limit_does_no_work(
            self, prefect_server, served, results_dir):
        from flows.captcha_ocr import captcha_ocr

        served.setenv(env_name("max_samples"), "1000")
        with pytest.raises(ConfigError, match=r"num_samples=1000000 is over the served limit "
                           r"max_samples=1000; .*`ocr-pipeline serve --max-samples`"):
            captcha_ocr(CaptchaParams(results_dir=results_dir, num_samples=1_000_000))
        assert no_work_in(results_dir)

    def test_a_served_retrain_asking_for_1000_epochs_is_refused(
            self, prefect_server, served, results_dir):
        from flows.retrain import captcha_retrain

        with pytest.raises(ConfigError, match=r"epochs=1000 is over the served limit "
                           r"max_epochs=250; .*--max-epochs"):
            captcha_retrain(RetrainParams(results_dir=results_dir, num_samples=40, epochs=1000))
        assert no_work_in(results_dir)

    @pytest.mark.parametrize(("params", "message"), [
        (CaptchaParams(), None),  # the defaults fit the default limits
        (CaptchaParams(num_samples=None), None),
        (CaptchaParams(source="url", download_max_mib=4096), r"download_max_mib=4096 is over the "
         r"served limit max_download_mib=64; .*--max-download-mib"),
        (RetrainParams(evaluation_samples=100_000), r"evaluation_samples=100000 .*--max-samples"),
        (MnistParams(epochs=1000), r"epochs=1000 .*--max-epochs"),
    ])
    def test_each_size_is_checked(self, params, message):
        if message is None:
            check_served_limits(params, ServedLimits())
        else:
            with pytest.raises(ConfigError, match=message):
                check_served_limits(params, ServedLimits())

    def test_a_lower_limit_counts_the_default_sample_count(self):
        default = CaptchaParams().sample_count
        with pytest.raises(ConfigError, match=f"num_samples={default} is over"):
            check_served_limits(CaptchaParams(), ServedLimits(max_samples=default - 1))
        check_served_limits(CaptchaParams(source="url"), ServedLimits(max_download_mib=64))

    def test_the_limits_come_from_the_environment(self):
        environ = {env_name("max_samples"): "300", env_name("dask_address"): "tcp://h:1"}
        limits = ServedLimits.from_environ(environ)
        assert (limits.max_samples, limits.dask_address, limits.max_epochs) == (300, "tcp://h:1", 250)
        assert ServedLimits.from_environ(limits.as_environ()) == limits
        with pytest.raises(ConfigError, match=r"OCR_PIPELINE_SERVED_MAX_EPOCHS='many'"):
            ServedLimits.from_environ({env_name("max_epochs"): "many"})


@flow
def confined(params: SweepParams) -> bool:
    confine_served_run(params)
    return True


def test_a_local_run_keeps_its_freedom(prefect_server, monkeypatch, listener):
    monkeypatch.delenv("PREFECT__RUNTIME__DEPLOYMENT__ID", raising=False)
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    assert confined(SweepParams(dask_address=address, epochs=1000, num_samples=1_000_000))


@flow
def waits_to_be_cancelled(params: PredictParams) -> str:
    """A served run that outlives its budget: it waits for the server to say Cancelling."""
    confine_served_run(params)
    run_id = FlowRunContext.get().flow_run.id
    deadline = time.monotonic() + 120  # generous: a loaded machine starts runs slowly
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(run_id).state
            if state.is_cancelling():
                return state.message
            time.sleep(0.2)
    return "never cancelled"


def test_a_run_past_its_time_budget_is_cancelled(prefect_server, served, results_dir,
                                                   closed_port):
    served.setenv(env_name("max_run_minutes"), "0.02")  # 1.2 s
    # The process's default settings name another server (as after a command in the same
    # process started its own): the budget must reach the server this run reports to.
    import prefect.context
    from prefect.settings import PREFECT_API_URL

    run_settings = prefect.context.get_settings_context()
    served.setattr(prefect.context, "GLOBAL_SETTINGS_CONTEXT", run_settings.model_copy(update={
        "settings": run_settings.settings.copy_with_update(
            updates={PREFECT_API_URL: f"http://127.0.0.1:{closed_port}/api"})}))
    params = PredictParams(results_dir=results_dir, inputs=[results_dir],
                           output=results_dir / "p.csv")
    start = time.perf_counter()
    message = waits_to_be_cancelled(params)
    assert time.perf_counter() - start >= 1.2  # not before its budget ran out
    assert message == ("exceeded the served time budget of 0.02 minutes; an administrator can "
                       "raise it with `ocr-pipeline serve --max-run-minutes`")


def test_a_budget_that_cannot_reach_the_server_says_how_to_cancel(monkeypatch, caplog,
                                                                  closed_port):
    import logging

    from prefect.settings import PREFECT_API_URL, temporary_settings

    import tasks.served

    monkeypatch.setattr(tasks.served, "CANCEL_ATTEMPTS", 1)
    run_id = uuid.uuid4()
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{closed_port}/api"}):
        assert not tasks.served.cancel_flow_run(run_id, 0.5, logging.getLogger("budget"))
    [message] = caplog.messages
    assert re.fullmatch(rf"could not cancel the run past its time budget \(ConnectError: .+\); "
                        rf"cancel it from the UI or with `prefect flow-run cancel {run_id}`",
                        message), message
