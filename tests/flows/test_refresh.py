"""`refresh` is a run parameter: such a run recomputes its cached steps, others use the cache."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect import flow

from flows.cli import main
from flows.refresh import honour_refresh
from ocr_core.config import CaptchaParams, MnistParams, RetrainParams, RunParams
from ocr_core.files import atomic_path
from tasks.caching import cached_task, current_step_key
from tasks.records import Output

CALLS: list[str] = []


@cached_task()
def write_text(text: str, results_dir: Path) -> Output:
    CALLS.append(text)
    path = results_dir / f"{current_step_key()}.txt"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Output(str(path), step_key=current_step_key())


@flow
@honour_refresh
def write_flow(params: RunParams) -> Output:
    return write_text("hello", params.results_dir)


@pytest.mark.slow
def test_a_refresh_run_recomputes_and_later_runs_use_its_result(prefect_server, results_dir):
    CALLS.clear()
    write_flow(RunParams(results_dir=results_dir))
    write_flow(RunParams(results_dir=results_dir))
    assert CALLS == ["hello"]
    write_flow(RunParams(results_dir=results_dir, refresh=True))
    assert CALLS == ["hello", "hello"]
    write_flow(RunParams(results_dir=results_dir))
    assert CALLS == ["hello", "hello"]


@pytest.mark.parametrize("params", [CaptchaParams, MnistParams, RetrainParams])
def test_every_flow_form_has_refresh(params):
    assert params.model_fields["refresh"].default is False
    assert "Recompute" in params.model_fields["refresh"].description


@pytest.mark.parametrize("command", ["captcha", "mnist", "retrain"])
def test_the_cli_flag_is_the_parameter(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "--refresh / --no-refresh" in result.output
