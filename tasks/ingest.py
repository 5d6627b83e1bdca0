"""Prefect tasks of the ingest flow: plan, move, report, and announce the dataset update as an event.

None is cached: each changes or reads folders whose content is the point (a rerun must look again).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.events import emit_event

from ocr_core.data import ingest
from ocr_core.data.validation import ImageSpec
from ocr_core.files import atomic_path, write_json
from ocr_core.registry import Registry
from tasks.logs import run_logger
from tasks.roots import current_root, on_root


@task(cache_policy=NO_CACHE)
def plan_ingest(source_dir: Path, data_dir: Path, label_pattern: str,
                image_size: tuple[int, int], results_dir: Path | None = None) -> ingest.IngestPlan:
    """Check the incoming files like training does, against the dataset's files, and against
    the evaluation set of the registry under `results_dir`."""
    width, height = image_size
    held_out = Registry.of(results_dir).evaluation_images() if results_dir is not None else {}
    plan = ingest.plan_ingest(source_dir, data_dir,
                              ImageSpec(width=width, height=height, label_pattern=label_pattern),
                              held_out)
    run_logger().info("%d of %d images in %s pass; %d refused", len(plan.accepted),
                          plan.checked, plan.source_dir, len(plan.refused))
    return plan


@task(cache_policy=NO_CACHE)
def move_accepted(plan: ingest.IngestPlan) -> ingest.IngestOutcome:
    """Move the accepted files into the dataset folder, one atomic move each."""
    outcome = ingest.carry_out(plan)
    run_logger().info(outcome.summary())
    return outcome


@task(cache_policy=NO_CACHE)
@on_root
def write_ingest_report(outcome: ingest.IngestOutcome, results_dir: Path) -> str:
    """Write the report (JSON and markdown) under the results root; publish it as an artifact.
    Returns where the report is (a path, or a URL on a store)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    key = f"manifests/ingest-{stamp}"
    folder = results_dir / key
    markdown = ingest.report_markdown(outcome)
    with atomic_path(folder, is_dir=True) as tmp:
        write_json(tmp / "report.json", outcome.as_dict())
        (tmp / "report.md").write_text(markdown)
    if TaskRunContext.get() is not None:
        create_markdown_artifact(markdown, key="captcha-ingest", description=outcome.summary())
    root = current_root()
    root.push(key)
    run_logger().info("report %s", root.location(f"{key}/report.json"))
    return root.location(f"{key}/report.json")


@task(cache_policy=NO_CACHE)
def announce_dataset_update(outcome: ingest.IngestOutcome, report_path: str) -> str | None:
    """Emit one `ocr-pipeline.dataset.updated` event for the dataset folder; its id, if sent."""
    folder = Path(outcome.data_dir)
    event = emit_event(
        event=ingest.DATASET_UPDATED_EVENT,
        resource={"prefect.resource.id": ingest.dataset_resource_id(folder),
                  "prefect.resource.name": folder.name},
        payload=ingest.event_payload(outcome, report_path),
    )
    run_logger().info("event %s for %s: %s", ingest.DATASET_UPDATED_EVENT,
                          ingest.dataset_resource_id(folder),
                          "sent" if event is not None else "not sent (events are off)")
    return None if event is None else str(event.id)
