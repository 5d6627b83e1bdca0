"""Choosing the task runner: the parameters, the runner built from them, the start-up warnings."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner
from pydantic import ValidationError

from flows.cli import main
from flows.runners import TASKS_PER_TRAINING, start_up_warnings, task_runner_for, thread_pool
from ocr_core.config import MnistParams, RunnerParams, SweepParams


class TestTaskRunnerFor:
    def test_threads_by_default_with_room_for_what_waits_on_the_trainings(self):
        runner = task_runner_for(RunnerParams(max_workers=3))
        assert isinstance(runner, ThreadPoolTaskRunner)
        assert runner.size == 3 * TASKS_PER_TRAINING

    def test_local_cluster_one_thread_per_worker_memory_limit_no_dashboard(self):
        runner = task_runner_for(RunnerParams(dask_workers=3, dask_memory_limit="2GiB"))
        assert isinstance(runner, DaskTaskRunner) and runner.address is None
        assert runner.cluster_kwargs | {"preload": None} == {
            "n_workers": 3, "threads_per_worker": 1, "processes": True, "memory_limit": "2GiB",
            "dashboard_address": None, "preload": None}

    def test_existing_cluster_is_only_connected_to(self):
        runner = task_runner_for(RunnerParams(dask_address="tcp://10.0.0.5:8786"))
        assert isinstance(runner, DaskTaskRunner)
        assert runner.address == "tcp://10.0.0.5:8786"
        assert runner.cluster_kwargs == {} and runner.cluster_class is None


class TestRunnerParams:
    def test_not_both_dask_flags(self):
        with pytest.raises(ValidationError, match="not both"):
            RunnerParams(dask_workers=2, dask_address="tcp://127.0.0.1:8786")

    @pytest.mark.parametrize("address", ["127.0.0.1:8786", "http://h:1", "tcp://h:1/x", ""])
    def test_address_must_be_a_scheduler_url(self, address):
        with pytest.raises(ValidationError, match="dask_address"):
            RunnerParams(dask_address=address)

    def test_mnist_has_the_runner_fields(self):
        assert MnistParams(dask_workers=2).runner_kind == "local-dask"
        assert MnistParams().runner_kind == "threads"


class TestSweepParams:
    def test_lists_are_crossed(self):
        params = SweepParams(seeds=[1, 2], learning_rates=[0.001, 0.003], recipes=["crnn"])
        assert [c.name for c in params.configurations()] == [
            "crnn lr=0.001 seed=1", "crnn lr=0.001 seed=2",
            "crnn lr=0.003 seed=1", "crnn lr=0.003 seed=2"]

    def test_a_repeated_value_trains_once(self):
        params = SweepParams(seeds=[3, 1, 3], learning_rates=[0.01, 0.01],
                             recipes=["crnn", "keras_example", "crnn"])
        assert (params.seeds, params.learning_rates) == ([3, 1], [0.01])
        assert params.recipes == ["crnn", "keras_example"]
        assert len(params.configurations()) == 4

    def test_empty_lists_stand_for_the_single_values(self):
        (config,) = SweepParams(seed=7, recipe="keras_example").configurations()
        assert (config.seed, config.learning_rate, config.recipe) == (7, None, "keras_example")

    def test_bad_values_are_refused(self):
        with pytest.raises(ValidationError, match="between 0 and 1"):
            SweepParams(learning_rates=[0.1, 2.0])
        with pytest.raises(ValidationError, match=">= 0"):
            SweepParams(seeds=[-1])
        with pytest.raises(ValidationError, match="reseed_each_run"):
            SweepParams(reseed_each_run=True)


class TestStartUpWarnings:
    def test_existing_cluster_with_a_relative_results_root(self):
        params = RunnerParams(dask_address="tcp://10.0.0.5:8786")
        warnings = start_up_warnings(params, Path("/here/ocr-results"), "ocr-results",
                                     environ={"PREFECT_API_URL": "http://x/api"})
        assert len(warnings) == 1 and "/here/ocr-results was resolved against" in warnings[0]
        assert "tcp://10.0.0.5:8786" in warnings[0]

    def test_default_results_root_counts_as_relative_unless_the_environment_names_one(self):
        params = RunnerParams(dask_address="tcp://10.0.0.5:8786")
        api = {"PREFECT_API_URL": "http://x/api"}
        assert start_up_warnings(params, Path("/here/ocr-results"), None, environ=api)
        assert not start_up_warnings(params, Path("/shared/r"), None,
                                     environ=api | {"OCR_PIPELINE_RESULTS": "/shared/r"})
        assert not start_up_warnings(params, Path("/shared/r"), "/shared/r", environ=api)

    def test_no_server_url_with_an_existing_cluster(self):
        params = RunnerParams(dask_address="tcp://10.0.0.5:8786")
        (warning,) = start_up_warnings(params, Path("/shared/r"), "/shared/r", environ={})
        assert "PREFECT_API_URL is not set" in warning and "temporary" in warning

    def test_threads_and_local_clusters_need_no_warning(self):
        # A local cluster shares one temporary server with this process (api_for_local_workers).
        for params in (RunnerParams(), RunnerParams(dask_workers=2)):
            assert start_up_warnings(params, Path("/here/r"), "r", environ={}) == []


def test_fanning_out_commands_offer_the_runner_flags():
    for command in ("sweep", "mnist", "generate"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        assert "--dask-workers" in result.output and "--dask-address" in result.output
    result = CliRunner().invoke(main, ["sweep", "--help"])
    assert "--seeds" in result.output and "--learning-rates" in result.output
    assert "--recipes" in result.output


def test_both_dask_flags_are_a_usage_error():
    result = CliRunner().invoke(main, ["sweep", "--dask-workers", "2", "--dask-address",
                                       "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "not both" in result.output


@pytest.mark.slow
def test_a_run_on_another_runner_hands_itself_over_once(prefect_server):
    # A deployment run starts on the flow's default runner; its parameters may ask for another.
    from prefect import flow
    from prefect.context import FlowRunContext

    from flows.runners import run_on_chosen_runner

    @flow(task_runner=thread_pool(2))
    def probe(params: RunnerParams) -> tuple[int, bool]:
        if (handover := run_on_chosen_runner(probe, params)) is not None:
            return handover()
        context = FlowRunContext.get()
        return context.task_runner.size, context.flow_run.parent_task_run_id is not None

    assert probe(RunnerParams(max_workers=2)) == (thread_pool(2).size, False)  # no subflow
    assert probe(RunnerParams(max_workers=3)) == (thread_pool(3).size, True)  # a subflow


def test_runner_key_ignores_only_the_worker_preload():
    from flows.runners import runner_key

    local = RunnerParams(dask_workers=2)
    assert runner_key(task_runner_for(local)) == runner_key(task_runner_for(local, False))
    assert runner_key(task_runner_for(local)) != runner_key(
        task_runner_for(RunnerParams(dask_workers=3)))
    assert runner_key(task_runner_for(RunnerParams())) == ("threads", 2 * TASKS_PER_TRAINING)
    assert runner_key(task_runner_for(RunnerParams(dask_address="tcp://h:1")))[:2] == (
        "dask", "tcp://h:1")
