"""Deployments as served and as declared in prefect.yaml: names, schedules, typed parameters."""

import asyncio
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from prefect.utilities.schema_tools import validate

from flows.serving import DEFAULT_RETRAIN_CRON, build_deployments, serve, served_limits
from ocr_core.config import RetrainParams
from ocr_core.layout import RESULTS_ENV
from tasks.served_limits import ServedLimits, env_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = PROJECT_ROOT / "deployments" / "prefect.yaml"


def schema_errors(deployment, parameters: dict) -> list[str]:
    schema = deployment._parameter_openapi_schema.model_dump()
    return [error.message for error in validate(parameters, schema)]


@pytest.fixture(scope="module")
def deployments():
    params = RetrainParams(results_dir=Path("relative-results"), num_samples=40, epochs=1)
    served = build_deployments(params, cron="0 4 * * 0", timezone="Europe/Berlin")
    return {deployment.name: deployment for deployment in served}


class TestServedDeployments:
    def test_captcha_and_retrain_are_served(self, deployments):
        assert set(deployments) == {"captcha", "retrain", "sweep", "mnist", "predict"}
        assert deployments["sweep"].entrypoint.endswith("sweep.py:captcha_sweep")
        assert deployments["captcha"].entrypoint.endswith("captcha_ocr.py:captcha_ocr")
        assert deployments["retrain"].entrypoint.endswith("retrain.py:captcha_retrain")

    def test_only_retrain_is_scheduled(self, deployments):
        (schedule,) = deployments["retrain"].schedules
        assert schedule.schedule.cron == "0 4 * * 0"
        assert schedule.schedule.timezone == "Europe/Berlin"
        assert not deployments["captcha"].schedules

    def test_given_flags_and_an_absolute_results_root_become_the_defaults(self, deployments):
        retrain = deployments["retrain"].parameters["params"]
        assert retrain["results_dir"] == str(Path("relative-results").absolute())
        assert (retrain["num_samples"], retrain["epochs"]) == (40, 1)
        assert retrain["reseed_each_run"] is True  # a scheduled run must see new data
        assert "reseed_each_run" not in deployments["captcha"].parameters["params"]

    def test_the_form_is_the_typed_parameters_and_the_defaults_fit_it(self, deployments):
        for name, deployment in deployments.items():
            assert deployment.enforce_parameter_schema
            if name != "predict":  # asks for its inputs and results file
                assert schema_errors(deployment, deployment.parameters) == []
        schema = deployments["retrain"]._parameter_openapi_schema.model_dump()
        fields = schema["definitions"]["RetrainParams"]["properties"]
        assert "Sequence accuracy" in fields["promotion_margin"]["description"]

    def test_bad_values_are_rejected_by_the_schema(self, deployments):
        assert schema_errors(deployments["retrain"], {"params": {"epochs": 0}}) != []
        assert schema_errors(deployments["retrain"], {"params": {"source": "ftp"}}) != []
        assert schema_errors(deployments["retrain"], {"params": {"epochs": 3}}) == []

    def test_the_sweep_form_has_the_lists_and_the_runner(self, deployments):
        sweep = deployments["sweep"]
        assert "reseed_each_run" not in sweep.parameters["params"]
        assert schema_errors(sweep, sweep.parameters) == []
        good = {"params": {"seeds": [1, 2], "learning_rates": [0.001], "dask_workers": 2}}
        assert schema_errors(sweep, good) == []
        assert schema_errors(sweep, {"params": {"dask_address": "localhost"}}) != []
        assert schema_errors(sweep, {"params": {"recipes": ["resnet"]}}) != []

    def test_the_predict_form_asks_for_the_images_and_the_results_file(self, deployments):
        predict = deployments["predict"]
        errors = schema_errors(predict, predict.parameters)
        assert sorted(errors) == ["'inputs' is a required property",
                                  "'output' is a required property"]
        given = predict.parameters["params"] | {"inputs": ["/data/new"], "output": "/data/p.csv"}
        assert schema_errors(predict, {"params": given}) == []
        assert schema_errors(predict, {"params": given | {"dask_workers": 0}}) != []

    def test_the_mnist_flow_is_served_with_the_results_root(self, deployments):
        mnist = deployments["mnist"]
        assert mnist.entrypoint.endswith("mnist.py:mnist")
        assert mnist.parameters["params"]["results_dir"] == str(Path("relative-results").absolute())
        assert schema_errors(mnist, {"params": {"models": ["dense", "resnet"]}}) != []
        assert schema_errors(mnist, {"params": {"models": ["dense"], "epochs": 2}}) == []


class TestServeCommand:
    def test_a_bad_cron_is_refused_before_anything_starts(self):
        result = CliRunner().invoke(serve, ["--cron", "every monday"])
        assert result.exit_code == 2 and "Invalid cron string" in result.output

    def test_it_needs_a_server(self, tmp_path, monkeypatch):
        from prefect.settings import PREFECT_API_URL, temporary_settings

        monkeypatch.setenv(RESULTS_ENV, str(tmp_path))  # serve sets it; restored afterwards
        for name in ServedLimits.model_fields:
            monkeypatch.delenv(env_name(name), raising=False)
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            result = CliRunner().invoke(serve, ["--results-dir", str(tmp_path)])
        assert result.exit_code == 2 and "prefect server start" in result.output

    def test_the_runs_defaults_must_fit_the_limits(self):
        result = CliRunner().invoke(serve, ["--num-samples", "60000", "--no-schedule"])
        assert result.exit_code == 2
        assert ("num_samples=60000 is over the served limit max_samples=50000; an administrator "
                "can raise it with `ocr-pipeline serve --max-samples`") in result.output
        result = CliRunner().invoke(serve, ["--max-epochs", "0"])
        assert result.exit_code == 2 and "--max-epochs" in result.output


class TestServedLimits:
    def test_flags_win_over_the_environment_and_the_defaults(self, monkeypatch):
        monkeypatch.setenv(env_name("max_samples"), "3000")
        monkeypatch.setenv(env_name("max_epochs"), "9")
        limits, runner = served_limits({"max_epochs": 5, "dask_workers": None})
        assert (limits.max_samples, limits.max_epochs, limits.dask_workers) == (3000, 5, 2)
        assert runner == {}  # nothing given: the runs keep their threads

    def test_the_served_cluster_is_the_fan_out_flows_default(self, monkeypatch):
        for name in ServedLimits.model_fields:
            monkeypatch.delenv(env_name(name), raising=False)
        limits, runner = served_limits({"dask_address": "tcp://10.0.0.5:8786", "max_workers": 1})
        assert runner == {"dask_address": "tcp://10.0.0.5:8786", "max_workers": 1}
        assert limits.as_environ()[env_name("dask_address")] == "tcp://10.0.0.5:8786"
        params = RetrainParams(results_dir=Path("relative-results"), num_samples=40)
        served = {d.name: d for d in build_deployments(params, runner=runner)}
        for name in ("sweep", "mnist", "predict"):
            assert served[name].parameters["params"]["dask_address"] == "tcp://10.0.0.5:8786"
        assert schema_errors(served["sweep"], served["sweep"].parameters) == []
        assert "dask_address" not in served["captcha"].parameters["params"]
        assert served_limits({"dask_workers": 3})[1] == {"dask_workers": 3}


@pytest.fixture(scope="module")
def declared():
    return {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}


class TestPrefectYaml:
    def test_entrypoints_resolve_to_the_flows(self, declared):
        from prefect.flows import load_flow_from_entrypoint

        names = {}
        for name, deployment in declared.items():
            path, function = deployment["entrypoint"].split(":")
            names[name] = load_flow_from_entrypoint(f"{PROJECT_ROOT / path}:{function}").name
        assert names == {"captcha": "captcha-ocr", "retrain": "captcha-retrain",
                         "sweep": "captcha-sweep", "mnist": "mnist",
                         "predict": "captcha-predict"}

    def test_parameters_fit_the_flows_and_retrain_is_weekly(self, declared, deployments):
        for name, deployment in declared.items():
            assert deployment["work_pool"]["name"] == "ocr-pipeline"
            if name != "predict":  # asks for its inputs and results file
                assert schema_errors(deployments[name], deployment["parameters"]) == []
        (schedule,) = declared["retrain"]["schedules"]
        assert schedule["cron"] == DEFAULT_RETRAIN_CRON


def server_side(trigger):
    """The automation Prefect's server would store for a deployment trigger."""
    import uuid

    from prefect.server.events.schemas.automations import AutomationCore

    trigger.set_deployment_id(uuid.uuid4())
    return AutomationCore.model_validate(trigger.as_automation().model_dump(mode="json"))


def dataset_event(folder, name="ocr-pipeline.dataset.updated"):
    import uuid
    from datetime import UTC, datetime

    from prefect.server.events.schemas.events import ReceivedEvent

    from ocr_core.data.ingest import dataset_resource_id

    return ReceivedEvent(occurred=datetime.now(UTC), event=name, id=uuid.uuid4(),
                         resource={"prefect.resource.id": dataset_resource_id(folder)},
                         payload={"data_dir": str(folder)})


class TestNewDataTrigger:
    @pytest.fixture
    def on_dataset(self, tmp_path):
        params = RetrainParams(source="dir", data_dir=tmp_path / "data",
                               evaluation_dir=tmp_path / "held-out", epochs=1)
        served = build_deployments(params, cron=None, debounce=45)
        return {deployment.name: deployment for deployment in served}

    def test_only_a_dataset_retrain_carries_the_trigger(self, deployments, on_dataset):
        assert not deployments["retrain"].triggers  # synthetic data: nothing to watch
        assert not on_dataset["captcha"].triggers and not on_dataset["mnist"].triggers
        (trigger,) = on_dataset["retrain"].triggers
        assert on_dataset["retrain"].concurrency_limit == 1
        assert not on_dataset["retrain"].schedules  # --no-schedule keeps the trigger

    def test_it_matches_ingests_into_its_folder_only(self, on_dataset, tmp_path):
        automation = server_side(on_dataset["retrain"].triggers[0])
        trigger = automation.trigger
        assert trigger.covers(dataset_event(tmp_path / "data"))
        assert not trigger.covers(dataset_event(tmp_path / "other"))
        assert not trigger.covers(dataset_event(tmp_path / "data", "ocr-pipeline.other"))

    def test_debounce_and_the_deployments_own_parameters(self, on_dataset, tmp_path):
        from datetime import timedelta

        automation = server_side(on_dataset["retrain"].triggers[0])
        assert automation.trigger.posture == "Reactive" and automation.trigger.threshold == 1
        assert automation.trigger.within == timedelta(seconds=45)
        (action,) = automation.actions
        assert action.type == "run-deployment" and action.schedule_after == timedelta(seconds=45)
        params = action.parameters["params"]
        # Nothing comes from the event: its payload cannot choose the folder trained on.
        assert "{{" not in str(action.parameters)
        assert params["data_dir"] == str(tmp_path / "data")
        assert params["evaluation_dir"] == str(tmp_path / "held-out")
        assert params["source"] == "dir" and params["epochs"] == 1
        assert schema_errors(on_dataset["retrain"], {"params": params}) == []

    def test_prefect_yaml_retrains_the_folder_fixed_at_deploy_time(self, declared):
        from types import SimpleNamespace

        from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
        from prefect.utilities.templating import resolve_variables
        from pydantic import TypeAdapter

        def deployed(spec, variables):  # what `prefect deploy` does with the Prefect variables
            class Variables:
                async def read_variable_by_name(self, name):
                    value = variables.get(name)
                    return None if value is None else SimpleNamespace(value=value)

            spec = asyncio.run(resolve_variables(spec, client=Variables()))
            return server_side(TypeAdapter(DeploymentTriggerTypes).validate_python(spec))

        (spec,) = declared["retrain"]["triggers"]
        automation = deployed(spec, {"ocr_pipeline_data_dir": "/srv/a"})
        assert automation.trigger.covers(dataset_event(Path("/srv/a")))
        assert not automation.trigger.covers(dataset_event(Path("/srv/b")))
        assert not automation.trigger.covers(dataset_event(Path("/srv/a/b")))
        (action,) = automation.actions
        assert action.parameters["params"]["data_dir"] == "/srv/a"
        assert "event" not in str(action.parameters)
        assert declared["retrain"]["concurrency_limit"] == 1

        unset = deployed(spec, {})  # no folder given: the trigger matches nothing
        assert not unset.trigger.covers(dataset_event(Path("/srv/a")))
