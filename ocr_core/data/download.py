"""Download a file over http(s) or copy it from a file:// URL, all-or-nothing and checksummed.

The body streams into a temporary sibling of the target and is renamed into place only when it is
complete and, when a sha256 is given, verified: a failed or killed download never leaves a file
under the target's name. Connection errors, timeouts, truncated bodies and HTTP 5xx/429 are retried
with exponential backoff and jitter (a server's Retry-After wins); other 4xx and checksum mismatches
fail at once. This is the only retry layer: callers must not retry on top of it.

A copy on disk is reused without a request when a sha256 pins its content. Without one, the URL
may have moved on (a branch link): the copy is revalidated with a conditional request
(If-None-Match / If-Modified-Since, from the ETag and Last-Modified the server sent with it,
kept beside the file); 304 reuses it, 200 replaces it. A server that sent neither is asked for
the whole file again; a file:// source is compared by size and modification time
(`ocr_core.data.revalidation`).

A hostile URL is refused (`ocr_core.guards.targets`): a served run's file:// outside the allowed roots,
and private addresses in a served run or after a public hop, each redirect checked before it is
followed. A body over `settings.max_bytes` (default 64 MiB) ends the transfer: an announced
Content-Length before the first byte, a body without one as soon as it passes the limit.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import requests

from ocr_core.data.retry import RETRYABLE_STATUS, Retryable, describe_error, parse_retry_after, retry_delay
from ocr_core.data.revalidation import (
    conditional_headers,
    file_validators,
    read_validators,
    response_validators,
    write_validators,
)
from ocr_core.data.transfer import CHUNK, ProgressCallback, too_large, write_stream
from ocr_core.errors import ConfigError, DownloadError
from ocr_core.files import sha256_file
from ocr_core.guards.targets import HopGuard, TargetPolicy, check_file_source, checked_session, get_checked
from ocr_core.version import __version__

logger = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https", "file")
DEFAULT_MAX_BYTES = 64 * 2**20  # the published captcha zip is 9 MB

@dataclass(frozen=True)
class DownloadSettings:
    """How hard to try: timeouts in seconds, attempts in total, backoff base and cap in seconds;
    and the most bytes a body may have."""

    attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    backoff: float = 1.0
    max_delay: float = 60.0
    progress_interval: float = 5.0
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"download attempts must be at least 1, got {self.attempts}")
        if self.max_bytes < 1:
            raise ConfigError(f"download max_bytes must be at least 1, got {self.max_bytes}")
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"download {name} must be positive, got {getattr(self, name)}")
        if self.backoff < 0 or self.max_delay < 0:
            raise ConfigError(f"download backoff and max_delay must not be negative, got "
                              f"{self.backoff} and {self.max_delay}")


@dataclass(frozen=True)
class DownloadResult:
    """A completed download: where it is, its sha256 and size, and the attempts it took (0: cached)."""

    path: Path
    sha256: str
    size: int
    attempts: int


def check_url(url: str) -> str:
    """Return `url` if it is an http, https or file URL with somewhere to go.

    Raises:
        ConfigError: another scheme, no host for http(s), or no path for file.
    """
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ConfigError(
            f"only {', '.join(ALLOWED_SCHEMES)} URLs can be downloaded, got {url!r}"
            + (" (a local zip is file:///absolute/path.zip)" if not scheme else "")
        )
    if scheme in ("http", "https") and not parsed.hostname:
        raise ConfigError(f"URL has no host: {url!r}")
    if scheme == "file" and (not parsed.path or parsed.netloc not in ("", "localhost")):
        raise ConfigError(f"file URL must be file:///absolute/path, got {url!r}")
    return url


def file_name_of(url: str, default: str = "download") -> str:
    """The last path segment of `url` (what a browser would save it as)."""
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name if name and not name.startswith(".") else default


def download(
    url: str,
    target: str | Path,
    *,
    sha256: str | None = None,
    settings: DownloadSettings | None = None,
    progress: ProgressCallback | None = None,
    policy: TargetPolicy | None = None,
) -> DownloadResult:
    """Fetch `url` into `target` unless a good copy is already there.

    An existing `target` was renamed into place only after it was complete. With `sha256` it is
    re-verified and reused without touching the network; without, it is revalidated (see the
    module's docstring) and reused only if the source has not changed.

    Args:
        url: http, https or file URL; redirects are followed.
        target: the file to create; its folder is created if needed.
        sha256: expected hex digest; a mismatch fails without retrying.
        settings: timeouts, attempts, backoff and size limit (default: `DownloadSettings()`).
        progress: called with (bytes received, total or None) at most every
            `settings.progress_interval` seconds and once at the end; default: log the progress.
        policy: what the URL and its redirects may reach (default: a local run's,
            `TargetPolicy()`; a served run passes its allowed roots).

    Raises:
        ConfigError: the URL's scheme is not allowed, or a served run's file:// URL is outside
            the allowed roots.
        DownloadError: the file could not be fetched after `settings.attempts` attempts, the
            server refused it (4xx), its checksum did not match, it was over the size limit, or
            a hop was refused (`ocr_core.guards.targets`).
    """
    check_url(url)
    settings = settings or DownloadSettings()
    policy = policy or TargetPolicy()
    target = Path(target)
    expected = sha256.lower() if sha256 else None
    is_file_url = urllib.parse.urlsplit(url).scheme.lower() == "file"
    if is_file_url:  # before a copy on disk is reused: that would stand in for the source
        check_file_source(_local_source(url), policy)
    elif policy.served:
        HopGuard(url, policy).check_url(url)
    validators: dict[str, str] = {}
    if target.is_file():
        digest = sha256_file(target)
        if expected is not None and digest == expected:
            logger.info("using the downloaded copy of %s at %s", url, target)
            return DownloadResult(target, digest, target.stat().st_size, attempts=0)
        if expected is not None:
            logger.warning("%s does not match sha256 %s; downloading again", target, expected)
        else:
            validators = read_validators(target)
            if is_file_url and validators and validators == file_validators(url):
                logger.info("%s is unchanged; using the copy at %s", url, target)
                return DownloadResult(target, digest, target.stat().st_size, attempts=0)
            if not validators:
                logger.info("%s: no ETag or Last-Modified kept from the last download; "
                            "downloading it again to check for changes", url)
    folder_existed = target.parent.exists()
    try:
        if is_file_url:
            result = _copy_local(url, target, expected, settings, progress, policy)
            write_validators(target, file_validators(url))
            return result
        return _fetch_with_retries(url, target, expected, settings, progress, policy, validators)
    except BaseException:
        if not folder_existed:  # leave nothing behind, not even the empty folder
            with contextlib.suppress(OSError):
                target.parent.rmdir()
        raise


def _fetch_with_retries(
    url: str, target: Path, expected: str | None, settings: DownloadSettings,
    progress: ProgressCallback | None, policy: TargetPolicy, validators: dict[str, str],
) -> DownloadResult:
    rng = random.Random()
    guard = HopGuard(url, policy)
    with checked_session() as session:
        session.headers.update({"User-Agent": f"ocr-pipeline/{__version__}",
                                "Accept-Encoding": "identity"})
        attempt = 0
        while True:
            attempt += 1
            try:
                fetched = _fetch_once(session, guard, target, expected, settings, progress,
                                      validators)
            except Retryable as error:
                if attempt >= settings.attempts:
                    raise DownloadError(
                        f"could not download {url} after {attempt} attempt(s): {error}") from None
                delay = retry_delay(attempt, settings, error.retry_after, rng)
                logger.warning("attempt %d/%d for %s failed (%s); retrying in %.1f s",
                               attempt, settings.attempts, url, error, delay)
                time.sleep(delay)
                continue
            if fetched is None:
                logger.info("%s has not changed since it was downloaded (HTTP 304); using %s",
                            url, target)
                return DownloadResult(target, sha256_file(target), target.stat().st_size, 0)
            size, digest = fetched
            logger.info("downloaded %s (%d bytes, sha256 %s) in %d attempt(s)",
                        url, size, digest, attempt)
            return DownloadResult(target, digest, size, attempt)


def _fetch_once(
    session: requests.Session, guard: HopGuard, target: Path, expected: str | None,
    settings: DownloadSettings, progress: ProgressCallback | None,
    validators: dict[str, str],
) -> tuple[int, str] | None:
    """(size, sha256) of the body written to `target`, or None if the server answered 304."""
    url = guard.url
    timeout = (settings.connect_timeout, settings.read_timeout)
    try:
        with get_checked(session, guard, stream=True, timeout=timeout,
                         headers=conditional_headers(validators)) as response:
            if response.status_code == 304:
                if validators and target.is_file():
                    return None
                raise DownloadError(f"{url}: HTTP 304 to a request that was not conditional")
            if response.status_code in RETRYABLE_STATUS:
                raise Retryable(f"HTTP {response.status_code} {response.reason}",
                                 parse_retry_after(response.headers.get("Retry-After")))
            if response.status_code >= 400:
                raise DownloadError(
                    f"{url}: HTTP {response.status_code} {response.reason} (not retried)")
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            if response.headers.get("Content-Encoding", "identity") != "identity":
                total = None  # the declared length counts encoded bytes, the body decoded ones
            if total is not None and total > settings.max_bytes:
                raise too_large(url, settings.max_bytes, f"it announces {total} bytes")
            written = write_stream(response.iter_content(CHUNK), url, target, expected, total,
                                   max_bytes=settings.max_bytes,
                                   progress_interval=settings.progress_interval, progress=progress)
            write_validators(target, response_validators(response.headers))
            return written
    except requests.exceptions.InvalidURL as error:
        raise DownloadError(f"{url}: invalid URL ({error})") from None
    except (requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as error:
        raise Retryable(describe_error(error)) from None


def _local_source(url: str) -> Path:
    return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))


def _copy_local(
    url: str, target: Path, expected: str | None, settings: DownloadSettings,
    progress: ProgressCallback | None, policy: TargetPolicy,
) -> DownloadResult:
    source = check_file_source(_local_source(url), policy)
    if not source.is_file():
        raise DownloadError(f"{url}: no such file {source}")
    with open(source, "rb") as handle:
        size = source.stat().st_size
        if size > settings.max_bytes:
            raise too_large(url, settings.max_bytes, f"the file has {size} bytes")
        chunks = iter(lambda: handle.read(CHUNK), b"")
        try:
            size, digest = write_stream(chunks, url, target, expected, size,
                                        max_bytes=settings.max_bytes,
                                        progress_interval=settings.progress_interval,
                                        progress=progress)
        except Retryable as error:  # the file changed while it was copied
            raise DownloadError(f"{url}: {error}") from None
    logger.info("copied %s (%d bytes, sha256 %s)", url, size, digest)
    return DownloadResult(target, digest, size, attempts=1)
