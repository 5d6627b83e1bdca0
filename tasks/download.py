"""Prefect tasks that fetch and unpack a published dataset: download_archive, extract_archive.

The download retries inside `ocr_core.data.download` (backoff, jitter, Retry-After); the task has no
Prefect retries on top, so an attempt count means what it says. Its cache key is the URL and the
expected checksum (timeouts, attempts and the size limit do not change what is downloaded);
extraction is keyed by the zip's sha256. A served run downloads under its policy
(`ocr_core.guards.targets`: file:// only under the allowed roots, public hosts only unless
`$OCR_PIPELINE_ALLOW_PRIVATE_HOSTS` says otherwise) and is never served from the cache, so a local
run's download cannot stand in for a URL the served run may not reach.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from ocr_core.data.archive import extract_zip, find_image_folder
from ocr_core.data.download import DEFAULT_MAX_BYTES, DownloadSettings, download, file_name_of
from ocr_core.data.transfer import describe_progress
from ocr_core.files import sha256_json
from ocr_core.guards.targets import TargetPolicy
from ocr_core.layout import ResultsLayout
from tasks.caching import cached_task, current_step_key, step_policy_when
from tasks.captcha import fingerprint_folder
from tasks.logs import run_logger
from tasks.records import DownloadedFile, ImageFolder
from tasks.served import is_served, served_allowed_roots


def target_policy() -> TargetPolicy:
    """What this run's downloads may reach: a served run's allowed roots (None locally) and the
    private hosts `$OCR_PIPELINE_ALLOW_PRIVATE_HOSTS` allows."""
    return TargetPolicy.for_run(served_allowed_roots())


def download_folder(url: str, sha256: str | None, results_dir: Path) -> Path:
    """The folder a download of `url` with that expected checksum lives in."""
    key = sha256_json({"url": url, "sha256": sha256.lower() if sha256 else None})[:24]
    return ResultsLayout(results_dir).data / "downloads" / key


class _ProgressReporter:
    """Logs a download's progress and, inside a task run, mirrors it in a progress artifact."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.artifact: UUID | None = None

    def __call__(self, received: int, total: int | None) -> None:
        run_logger().info("%s: %s", self.url, describe_progress(received, total))
        if not total or TaskRunContext.get() is None:  # an artifact belongs to a run
            return
        percent = min(100.0, 100 * received / total)
        if self.artifact is None:
            self.artifact = create_progress_artifact(percent, description=f"Download {self.url}")
        else:
            update_progress_artifact(self.artifact, percent)


# With a sha256 the content is pinned: cached by URL, checksum and results root (retry settings
# do not change the file). Without one the URL may have moved on: the task runs every time and
# revalidates the copy on disk with a conditional request (see `ocr_core.data.download`).
@cached_task(ignore=("timeout", "attempts", "backoff", "max_bytes"),
             cache_policy=step_policy_when(
                 lambda parameters: bool(parameters.get("sha256")) and not is_served()))
def download_archive(
    url: str,
    sha256: str | None,
    results_dir: Path,
    timeout: float = 60.0,
    attempts: int = 5,
    backoff: float = 1.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DownloadedFile:
    """Download `url` (http, https or file) into the results root, verified when `sha256` is
    given; a body over `max_bytes` is refused and nothing is kept."""
    target = download_folder(url, sha256, results_dir) / file_name_of(url, "archive.zip")
    settings = DownloadSettings(attempts=attempts, connect_timeout=timeout, read_timeout=timeout,
                                backoff=backoff, max_bytes=max_bytes)
    result = download(url, target, sha256=sha256, settings=settings,
                      progress=_ProgressReporter(url), policy=target_policy())
    return DownloadedFile(str(result.path), content_digest=result.sha256, url=url, size=result.size,
                          attempts=result.attempts)


@cached_task()
def extract_archive(archive: DownloadedFile, results_dir: Path) -> ImageFolder:
    """Unpack the zip safely and return its folder of PNGs (the archive may wrap it in a folder)."""
    key = current_step_key()
    extracted = extract_zip(archive.path, ResultsLayout(results_dir).data / "extracted" / key)
    folder = find_image_folder(extracted.path)
    run_logger().info("unpacked %s: %d files; images in %s", Path(archive.path).name,
                          extracted.files, folder)
    return fingerprint_folder.fn(folder)
