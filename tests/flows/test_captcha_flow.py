"""The captcha-ocr flow end to end on tiny generated data (1 epoch), and its caching."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from flows.captcha_ocr import captcha_ocr
from ocr_core.bundle.folder import load_bundle
from ocr_core.config import CaptchaParams
from tests.flows.task_runs import task_states

pytestmark = pytest.mark.slow
UNCACHED = {"publish_report", "check_learned"}  # run every time by design (NO_CACHE)


def _params(results_dir: Path, **overrides) -> CaptchaParams:
    values = dict(num_samples=40, epochs=1, patience=1, batch_size=8, min_val_accuracy=0,
                  results_dir=results_dir)
    return CaptchaParams(**values | overrides)


async def _artifact_keys(flow_run_id) -> set[str]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key for a in artifacts if a.key}


def _run(params: CaptchaParams):
    state = captcha_ocr(params, return_state=True)
    assert state.is_completed(), state
    return state.result(), task_states(state.state_details.flow_run_id), state


def test_flow_trains_evaluates_and_is_cached_on_rerun(prefect_server, results_dir):
    summary, states, state = _run(_params(results_dir))

    assert all(name == "Completed" for name in states.values()), states
    bundle = load_bundle(summary.model_path)
    assert bundle.info["recipe"] == "crnn"
    model_path = Path(summary.model_path)
    assert model_path.is_relative_to(results_dir)
    assert summary.metrics["split"] == "test" and summary.metrics["count"] >= 1
    # train and validation, what evaluate warns about: every image but the test split's
    assert len(bundle.training_images()) == 40 - summary.metrics["count"]
    assert 0.0 <= summary.metrics["sequence_accuracy"] <= 1.0
    for path in summary.plots.values():
        assert Path(path).read_bytes().startswith(b"\x89PNG")
    bundle_files = {p.name: p.read_bytes() for p in model_path.iterdir()}
    bundle_metrics = json.loads(bundle_files["metrics.json"])
    assert "test" not in bundle_metrics  # evaluations live beside it
    kept = bundle_metrics["kept_epoch"]  # which epoch early stopping kept, and why
    assert kept["epoch"] == 1 and kept["epochs_run"] == 1 and not kept["stopped_early"]
    assert kept["because"].startswith("epoch 1: val CER ") and "cer-then-loss" in kept["because"]
    assert json.loads(bundle_files["params.json"])["stopping_rule"] == "cer-then-loss"
    keys = asyncio.run(_artifact_keys(state.state_details.flow_run_id))
    assert {"captcha-metrics", "captcha-predictions", "captcha-run"} <= keys

    again, states, _ = _run(_params(results_dir, decoder="beam_search", beam_width=4))
    assert again.model_path == summary.model_path
    assert {p.name: p.read_bytes() for p in model_path.iterdir()} == bundle_files
    assert states["train_model"] == "Cached" and states["evaluate_model"] == "Completed"

    again, states, _ = _run(_params(results_dir))
    assert again == summary
    cached = {name for name, value in states.items() if value == "Cached"}
    assert cached == set(states) - UNCACHED, states

    # A hit whose files are gone is a miss: the data steps run again, the model is reused.
    shutil.rmtree(results_dir / "manifests")
    shutil.rmtree(results_dir / "data")
    again, states, _ = _run(_params(results_dir))
    assert again == summary
    recomputed = {name for name, value in states.items() if value == "Completed"}
    # Rendered again, the images get new stamps: validation runs again, finds the same content,
    # and the steps keyed by that content (preprocessing, training) stay cached.
    assert recomputed == {"render_captcha_shard", "collect_captchas", "validate_images",
                          "split_dataset"} | UNCACHED, states

    longer, states, _ = _run(_params(results_dir, epochs=2))
    recomputed = {name for name, value in states.items() if value == "Completed"}
    assert recomputed == {"train_model", "evaluate_model", "plot_history",
                          "plot_predictions"} | UNCACHED, states

    # A truncated model file is never served: that training runs again, and what reads it.
    model_file = Path(longer.model_path) / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    again, states, _ = _run(_params(results_dir, epochs=2))
    assert states["train_model"] == "Completed" and states["build_datasets"] == "Cached", states
    assert load_bundle(again.model_path).info["recipe"] == "crnn"


def test_dir_source_reads_a_users_folder(prefect_server, results_dir, captcha_dir):
    params = CaptchaParams(source="dir", data_dir=captcha_dir, epochs=1, batch_size=8, min_val_accuracy=0,
                           results_dir=results_dir)
    summary, states, _ = _run(params)
    assert states["fingerprint_folder"] == "Completed"
    params_used = json.loads((Path(summary.model_path) / "params.json").read_text())
    assert params_used["augment"] is True  # real-data sources train with augmentation by default


def test_a_model_that_learned_nothing_fails_the_run(prefect_server, results_dir):
    from click.testing import CliRunner

    from flows.cli import main

    result = CliRunner().invoke(main, [
        "captcha", "--num-samples", "40", "--epochs", "1", "--batch-size", "8",
        "--results-dir", str(results_dir)])
    assert result.exit_code == 6, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: the model did not learn: best validation sequence accuracy "
                           "0.0% is below min_val_accuracy 50.0%"), last
    assert "Traceback" not in result.output
    model_path = last.split("model kept for inspection at ", 1)[1].split(",")[0]
    assert (Path(model_path) / "model.keras").is_file()  # kept on disk for inspection
    assert not list((results_dir / "evaluations").glob("*"))  # but never evaluated or reported


def test_the_same_images_in_another_folder_read_their_own_files(prefect_server, results_dir,
                                                                 captcha_dir, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(captcha_dir, first)
    _run(CaptchaParams(source="dir", data_dir=first, epochs=1, batch_size=8, min_val_accuracy=0,
                       results_dir=results_dir))
    shutil.copytree(first, second)
    shutil.rmtree(first)

    summary, states, _ = _run(CaptchaParams(source="dir", data_dir=second, epochs=2, batch_size=8,
                                            min_val_accuracy=0, results_dir=results_dir))
    assert states["validate_images"] == "Cached" and states["evaluate_model"] == "Completed"
    latest = max((results_dir / "evaluations").glob("*/predictions.json"),
                 key=lambda path: path.stat().st_mtime)
    assert {Path(p["path"]).parent for p in json.loads(latest.read_text())} == {second}
    assert summary.metrics["count"] > 0


def test_a_moved_results_root_keeps_every_cache_hit(prefect_server, tmp_path):
    old, new = tmp_path / "old-disk" / "results", tmp_path / "big-disk" / "results"
    first, _, _ = _run(_params(old))
    new.parent.mkdir()
    shutil.move(old, new)

    summary, states, _ = _run(_params(new))
    cached = {name for name, value in states.items() if value == "Cached"}
    assert cached == set(states) - UNCACHED, states
    assert Path(summary.model_path) == new / Path(first.model_path).relative_to(old)
    assert load_bundle(summary.model_path).info["recipe"] == "crnn"
    assert all(Path(path).is_relative_to(new) for path in summary.plots.values())
