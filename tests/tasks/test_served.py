"""Served or local: a deployment's run is confined to the allowed roots, a local run is not."""

import uuid

import pytest
from prefect import flow

from ocr_core.config import PredictParams
from ocr_core.errors import ConfigError
from tasks.served import confine_served_run, is_served, served_allowed_roots


def outside_params(tmp_path) -> PredictParams:
    return PredictParams(results_dir=tmp_path / "results", inputs=[tmp_path / "images"],
                         output="/elsewhere/p.csv")


@flow
def check(params: PredictParams) -> bool:
    confine_served_run(params)
    return is_served()


def test_a_local_run_keeps_its_freedom(prefect_server, tmp_path):
    assert not is_served() and served_allowed_roots() is None
    assert check(outside_params(tmp_path)) is False


def test_a_deployments_run_is_confined(prefect_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OCR_PIPELINE_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("OCR_PIPELINE_ALLOWED_ROOTS", raising=False)
    # Prefect's documented way to stand in for a deployment's run context.
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", str(uuid.uuid4()))
    assert is_served()
    assert served_allowed_roots() == [str((tmp_path / "results").resolve())]
    with pytest.raises(ConfigError, match="inputs\\[0\\]=.* is outside the allowed roots"):
        check.fn(outside_params(tmp_path))
