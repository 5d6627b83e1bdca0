"""The ingest flow: new labelled captchas -> checked -> moved into the dataset -> report -> one event.

The event (`ocr-pipeline.dataset.updated`, resource `ocr-pipeline.dataset.<folder>`) is what the
retrain deployment's trigger listens for; an ingest that accepts nothing sends none.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from flows.refresh import honour_refresh
from ocr_core.config import IngestParams
from tasks.ingest import announce_dataset_update, move_accepted, plan_ingest, write_ingest_report
from tasks.served import confine_served_run


class IngestSummary(BaseModel):
    """What an ingest did."""

    data_dir: Path
    accepted: list[str]
    refused: dict[str, list[str]]
    dataset_images: int
    report: Path
    event_id: str | None


@flow(name="captcha-ingest")
@honour_refresh
def captcha_ingest(params: IngestParams) -> IngestSummary:
    """Move checked `<label>.png` captchas into a dataset folder and announce the update."""
    confine_served_run(params)
    plan = plan_ingest(params.source_dir, params.data_dir, params.label_pattern,
                       params.image_width_height, params.results_dir)
    outcome = move_accepted(plan)
    report = write_ingest_report(outcome, params.results_dir)
    event_id = announce_dataset_update(outcome, report) if outcome.accepted else None
    return IngestSummary(data_dir=Path(outcome.data_dir), accepted=outcome.accepted,
                         refused=outcome.refused, dataset_images=outcome.dataset_images,
                         report=report, event_id=event_id)
