"""Evaluation of a captcha model: results beside the model, the bundle itself never changed."""

from __future__ import annotations

import json
from pathlib import Path

from prefect.logging import disable_run_logger

from ocr_core.data.dataset import index_images, list_pngs, split_records, write_split
from tasks.records import Datasets
from tasks.training import evaluate_model
from tests.tasks.test_registry import constant_bundle


def test_evaluation_writes_its_own_folder_and_leaves_the_bundle_unchanged(
    captcha_dir, tmp_path, results_dir
):
    model = constant_bundle(tmp_path / "bundle", 1)
    records = index_images(list_pngs(captcha_dir))
    splits = split_records(records, validation_fraction=0.2, test_fraction=0.2, seed=1)
    split_path = tmp_path / "split.json"
    write_split(split_path, splits, "".join(sorted({c for r in records for c in r.label})),
                seed=1, source_manifest="m")
    datasets = Datasets(str(tmp_path), content_digest="d", split_manifest=str(split_path))
    before = {p.name: p.read_bytes() for p in Path(model.path).iterdir()}

    with disable_run_logger():
        report = evaluate_model.fn(model, datasets, "test", "greedy", 4, results_dir)

    assert {p.name: p.read_bytes() for p in Path(model.path).iterdir()} == before
    assert report.path.startswith("evaluations/")
    stored = json.loads((results_dir / report.path).read_text())
    assert stored["count"] == report.metrics["count"] == len(splits["test"])
    assert stored["sequence_accuracy"] == report.metrics["sequence_accuracy"]
