"""When a failed download attempt is tried again: backoff with jitter, or the server's Retry-After."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime
from typing import Protocol

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class BackoffSettings(Protocol):
    """What `retry_delay` needs (`ocr_core.data.download.DownloadSettings` fits)."""

    backoff: float
    max_delay: float


class Retryable(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def retry_delay(
    attempt: int, settings: BackoffSettings, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    The server's Retry-After when it sent one, else exponential backoff with equal jitter
    (half fixed, half random) so that many clients do not retry in step; capped at `max_delay`.
    """
    if retry_after is not None:
        return min(retry_after, settings.max_delay)
    ceiling = min(settings.backoff * 2 ** (attempt - 1), settings.max_delay)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def describe_error(error: Exception) -> str:
    """A one-line reason: requests nests urllib3's errors, whose innermost text is the useful part."""
    inner = error.args[0] if error.args else error
    while getattr(inner, "reason", None) is not None:
        inner = inner.reason
    if isinstance(inner, Exception) and inner.args and isinstance(inner.args[0], str):
        inner = inner.args[0]
    return f"{type(error).__name__}: {inner}"
