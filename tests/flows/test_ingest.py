"""The captcha-ingest flow: moves, report, and exactly one event, or none when nothing is accepted."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from flows.cli import main
from ocr_core.config import IngestParams
from ocr_core.data.ingest import DATASET_UPDATED_EVENT, dataset_resource_id


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """The events the ingest task emits, recorded instead of sent."""
    import tasks.ingest

    events: list[dict] = []

    def record(**event):
        events.append(event)
        return None

    monkeypatch.setattr(tasks.ingest, "emit_event", record)
    return events


@pytest.mark.slow
def test_ingest_moves_reports_and_emits_one_event(prefect_server, results_dir, ingest_folders, sent):
    from flows.ingest import captcha_ingest

    incoming, dataset = ingest_folders
    Image.new("RGB", (100, 30)).save(incoming / "44444.png")
    summary = captcha_ingest(IngestParams(source_dir=incoming, data_dir=dataset,
                                          results_dir=results_dir))
    assert len(summary.accepted) == 4 and list(summary.refused) == ["44444.png"]
    assert summary.dataset_images == 10 and len(list(dataset.glob("*.png"))) == 10
    report = json.loads(summary.report.read_text())
    assert report["refused"] == {"44444.png": ["size 100x30, expected 200x50"]}
    assert (summary.report.parent / "report.md").exists()
    (event,) = sent
    assert event["event"] == DATASET_UPDATED_EVENT
    assert event["resource"]["prefect.resource.id"] == dataset_resource_id(dataset)
    assert event["payload"] | {"report": None} == {
        "data_dir": str(dataset.resolve()), "accepted": 4, "refused": 1, "dataset_images": 10,
        "report": None}

    # Again: only the refused file is left, so nothing is accepted and no event goes out.
    again = captcha_ingest(IngestParams(source_dir=incoming, data_dir=dataset,
                                        results_dir=results_dir))
    assert again.accepted == [] and again.event_id is None
    assert len(sent) == 1


@pytest.mark.slow
def test_ingest_refuses_images_of_the_registry_evaluation_set(prefect_server, results_dir,
                                                             ingest_folders, sent, tmp_path):
    from flows.ingest import captcha_ingest
    from ocr_core.data.dataset import index_images, list_pngs, records_digest
    from ocr_core.registry import Registry

    incoming, dataset = ingest_folders
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    leaked = sorted(incoming.glob("*.png"))[0]
    shutil.copy(leaked, evaluation / "held.png")  # the same bytes, under another name
    records = index_images(list_pngs(evaluation))
    Registry.of(results_dir).reserve_evaluation_set(
        records_digest(records), 1, {"folder": str(evaluation)},
        images={r.sha256: Path(r.path).name for r in records})
    summary = captcha_ingest(IngestParams(source_dir=incoming, data_dir=dataset,
                                          results_dir=results_dir))
    assert summary.refused == {leaked.name: [
        "same bytes as held.png in the evaluation set, which no model may train on"]}
    assert len(summary.accepted) == 3 and leaked.exists()


class TestIngestCommand:
    def test_data_dir_is_required(self, tmp_path):
        result = CliRunner().invoke(main, ["ingest", str(tmp_path)])
        assert result.exit_code == 2 and "--data-dir" in result.output

    def test_help_names_the_event(self):
        result = CliRunner().invoke(main, ["ingest", "--help"])
        assert result.exit_code == 0
        assert "SOURCE_DIR" in result.output and "--label-pattern" in result.output
        assert "--source-dir" not in result.output

    def test_missing_folders_fail_before_prefect_starts(self, tmp_path):
        result = CliRunner().invoke(main, ["ingest", str(tmp_path / "nope"), "--data-dir",
                                           str(tmp_path)])
        assert result.exit_code == 3
        assert result.output.strip() == f"Error: SOURCE_DIR is not a folder: {tmp_path / 'nope'}"
        result = CliRunner().invoke(main, ["ingest", str(tmp_path), "--data-dir",
                                           str(tmp_path / "nope")])
        assert result.exit_code == 3 and "--data-dir is not a folder" in result.output
