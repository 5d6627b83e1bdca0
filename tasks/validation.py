"""Prefect task that validates a folder of captchas and indexes the images that pass.

Every data source goes through it (generated, downloaded, a user's folder), so training only ever
sees checked images. The report is written as JSON and markdown beside the manifest and published
as a markdown artifact, also when the `fail` policy stops the run.
"""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact
from prefect.context import TaskRunContext

from ocr_core.data import dataset as ds
from ocr_core.data.validation import ImageSpec, Policy, enforce, report_markdown, validate_folder
from ocr_core.files import atomic_path, read_json, write_json
from ocr_core.layout import ResultsLayout
from tasks.caching import cached_task, current_step_key
from tasks.logs import run_logger
from tasks.records import ImageFolder, Manifest


@cached_task()
def validate_images(
    images: ImageFolder,
    results_dir: Path,
    policy: Policy = "fail",
    label_pattern: str | None = None,
    image_size: tuple[int, int] | None = None,
) -> Manifest:
    """Check every image (decodes, size, mode, label, duplicates) and index those accepted.

    Args:
        images: the folder to check.
        results_dir: results root; the report and the manifest go under it.
        policy: `fail` raises DataError listing the bad files; `skip` leaves them out.
        label_pattern: regular expression for labels (default: 5 of the 19 captcha characters).
        image_size: expected (width, height) (default: 200x50).

    Returns:
        The manifest of the accepted images, with `report` pointing at the JSON report.
    """
    defaults = ImageSpec()
    width, height = image_size or (defaults.width, defaults.height)
    spec = ImageSpec(width=width, height=height,
                     label_pattern=label_pattern or defaults.label_pattern)
    report = validate_folder(images.path, spec, policy)
    key = current_step_key()
    folder = ResultsLayout(results_dir).manifests / f"validation-{key}"
    markdown = report_markdown(report)
    with atomic_path(folder, is_dir=True) as tmp:
        write_json(tmp / "report.json", report.as_dict())
        (tmp / "report.md").write_text(markdown)
    report_path = folder / "report.json"
    if TaskRunContext.get() is not None:  # an artifact belongs to a run
        create_markdown_artifact(markdown, key="captcha-data-validation",
                                 description=report.summary())
    run_logger().info("%s; report %s", report.summary(), report_path)
    accepted = enforce(report, report_path)
    manifest_path = folder / "images.json"
    digest = ds.write_manifest(manifest_path, ds.index_images(accepted, report.digests),
                               images_root=images.path)
    return Manifest(str(manifest_path), content_digest=digest, count=len(accepted),
                    vocabulary=read_json(manifest_path)["vocabulary"], report=str(report_path),
                    images_root=images.path)
