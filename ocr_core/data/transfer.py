"""Writing a downloaded body to disk: all or nothing, under a size cap, checksummed, with progress."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ocr_core.data.retry import Retryable
from ocr_core.errors import DownloadError
from ocr_core.files import atomic_path

logger = logging.getLogger(__name__)

CHUNK = 1 << 16

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes received, total bytes or None) while a download runs."""


def too_large(url: str, limit: int, what: str) -> DownloadError:
    return DownloadError(
        f"{url}: refused, {what}, over the download size limit of {limit} bytes "
        f"({limit / 2**20:.1f} MiB); nothing was kept (raise the limit, download_max_mib, "
        "only for a source you trust)")


def write_stream(
    chunks: Iterable[bytes], url: str, target: Path, expected: str | None, total: int | None, *,
    max_bytes: int, progress_interval: float, progress: ProgressCallback | None,
) -> tuple[int, str]:
    """Write `chunks` to a temporary file, check size, length and checksum, rename onto `target`."""
    hasher = hashlib.sha256()
    received = 0
    last_report = time.monotonic()
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                if received + len(chunk) > max_bytes:
                    raise too_large(url, max_bytes, "the body is longer")
                handle.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                if time.monotonic() - last_report >= progress_interval:
                    last_report = time.monotonic()
                    report_progress(url, received, total, progress)
        if total is not None and received != total:
            raise Retryable(f"body truncated at {received} of {total} bytes")
        digest = hasher.hexdigest()
        if expected is not None and digest != expected:
            raise DownloadError(
                f"{url}: sha256 mismatch, expected {expected}, got {digest} ({received} bytes)")
    report_progress(url, received, total, progress)
    return received, digest


def report_progress(url: str, received: int, total: int | None,
                    progress: ProgressCallback | None) -> None:
    if progress is not None:
        progress(received, total)
    else:
        logger.info("%s: %s", url, describe_progress(received, total))


def describe_progress(received: int, total: int | None) -> str:
    """'3.2 of 9.0 MiB (36%)', or '3.2 MiB' when the size is unknown."""
    if total:
        return f"{received / 2**20:.1f} of {total / 2**20:.1f} MiB ({100 * received / total:.0f}%)"
    return f"{received / 2**20:.1f} MiB"
