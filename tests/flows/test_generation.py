"""Sharded generation: the same bytes on threads and on a local Dask cluster of two workers."""

import hashlib
from pathlib import Path

import pytest

from ocr_core.captcha.synthetic import generate_captchas
from ocr_core.config import RunnerParams

pytestmark = pytest.mark.slow


def _folder_digest(folder: Path) -> str:
    paths = sorted(folder.glob("*.png"))
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in paths)).hexdigest()


def test_same_bytes_on_threads_and_on_two_dask_workers(prefect_server, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    from flows.generation import GenerateParams, generate_captcha_folder
    from flows.runners import task_runner_for

    # The local cluster's worker processes report to the test's server.
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    reference = tmp_path / "reference"
    generate_captchas(reference, 600, seed=5)  # three render chunks

    written = {}
    for name, runner in {"threads": RunnerParams(), "dask": RunnerParams(dask_workers=2)}.items():
        params = GenerateParams(**runner.model_dump(), count=600, seed=5, out_dir=tmp_path / name)
        state = generate_captcha_folder.with_options(task_runner=task_runner_for(runner))(
            params, return_state=True)
        assert state.is_completed(), state
        written[name] = tmp_path / name
    assert _folder_digest(written["threads"]) == _folder_digest(reference)
    assert _folder_digest(written["dask"]) == _folder_digest(reference)
    assert not list(tmp_path.glob(".tmp-*"))  # the temporary folders went
