"""Downloads against a real HTTP server on 127.0.0.1 with scripted faults (no mocked requests)."""

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from ocr_core.data.download import (
    DownloadSettings,
    check_url,
    download,
    file_name_of,
)
from ocr_core.data.retry import parse_retry_after, retry_delay
from ocr_core.errors import ConfigError, DownloadError
from tests.fault_server import Reply

PAYLOAD = bytes(random.Random(0).getrandbits(8) for _ in range(200_000))
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
FAST = DownloadSettings(attempts=4, connect_timeout=2, read_timeout=2, backoff=0.01)


def contents(folder: Path) -> list[str]:
    """Every name in `folder`, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestRetries:
    def test_503_twice_then_success(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(503), Reply(503), Reply(body=PAYLOAD))
        result = download(url, tmp_path / "data.zip", settings=FAST)
        assert result.attempts == 3
        assert len(file_server.hits("/data.zip")) == 3
        assert result.sha256 == PAYLOAD_SHA256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
        assert contents(tmp_path) == ["data.zip"]

    def test_5xx_until_attempts_run_out(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(500))
        with pytest.raises(DownloadError, match=r"after 4 attempt\(s\): HTTP 500"):
            download(url, tmp_path / "data.zip", settings=FAST)
        assert len(file_server.hits("/data.zip")) == 4
        assert contents(tmp_path) == []

    def test_connection_dropped_mid_body_is_retried(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, truncate_at=50_000),
                                 Reply(body=PAYLOAD))
        result = download(url, tmp_path / "data.zip", settings=FAST)
        assert result.attempts == 2 and result.sha256 == PAYLOAD_SHA256
        assert contents(tmp_path) == ["data.zip"]

    def test_always_truncated_leaves_no_file(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, truncate_at=50_000))
        with pytest.raises(DownloadError, match="IncompleteRead|truncated"):
            download(url, tmp_path / "data.zip", settings=FAST)
        assert len(file_server.hits("/data.zip")) == 4
        assert contents(tmp_path) == []

    def test_response_slower_than_read_timeout(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, delay=1.5))
        settings = DownloadSettings(attempts=2, connect_timeout=1, read_timeout=0.3, backoff=0.01)
        started = time.monotonic()
        with pytest.raises(DownloadError, match="Read timed out"):
            download(url, tmp_path / "data.zip", settings=settings)
        assert time.monotonic() - started < 1.4  # gave up on each attempt at the read timeout
        assert len(file_server.hits("/data.zip")) == 2
        assert contents(tmp_path) == []

    def test_body_that_stalls_past_the_read_timeout_is_retried(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, stall_after=1000, stall=1.5),
                                 Reply(body=PAYLOAD))
        settings = DownloadSettings(attempts=2, connect_timeout=1, read_timeout=0.3, backoff=0.01)
        result = download(url, tmp_path / "data.zip", settings=settings)
        assert result.attempts == 2 and result.sha256 == PAYLOAD_SHA256

    def test_retry_after_is_honoured(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(429, headers={"Retry-After": "1"}),
                                 Reply(body=PAYLOAD))
        result = download(url, tmp_path / "data.zip", settings=FAST)
        first, second = file_server.hits("/data.zip")
        assert result.attempts == 2
        assert second - first >= 0.95  # the backoff alone would have waited about 0.01 s

    def test_backoff_grows_between_attempts(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(503), Reply(503), Reply(body=PAYLOAD))
        download(url, tmp_path / "data.zip",
                 settings=DownloadSettings(attempts=3, read_timeout=2, backoff=0.3))
        first, second, third = file_server.hits("/data.zip")
        assert second - first >= 0.15  # attempt 1: between 0.15 and 0.3 s
        assert third - second >= 0.3  # attempt 2: between 0.3 and 0.6 s

    def test_connection_refused_is_retried_then_reported(self, tmp_path):
        url = f"http://127.0.0.1:{closed_port()}/data.zip"
        with pytest.raises(DownloadError, match=r"after 2 attempt\(s\).*refused"):
            download(url, tmp_path / "data.zip",
                     settings=DownloadSettings(attempts=2, connect_timeout=1, backoff=0.01))
        assert contents(tmp_path) == []


class TestFailuresThatAreNotRetried:
    def test_404(self, file_server, tmp_path):
        url = file_server.script("/missing.zip", Reply(404, b"no"))
        with pytest.raises(DownloadError, match=r"missing.zip: HTTP 404 Not Found \(not retried\)"):
            download(url, tmp_path / "data.zip", settings=FAST)
        assert len(file_server.hits("/missing.zip")) == 1
        assert contents(tmp_path) == []

    def test_wrong_checksum(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        with pytest.raises(DownloadError, match=f"sha256 mismatch, expected {'0' * 64}, "
                                                f"got {PAYLOAD_SHA256}"):
            download(url, tmp_path / "data.zip", sha256="0" * 64, settings=FAST)
        assert len(file_server.hits("/data.zip")) == 1
        assert contents(tmp_path) == []

    @pytest.mark.parametrize("url", ["ftp://example.org/data.zip", "/tmp/data.zip",
                                     "javascript:alert(1)", "http:///data.zip"])
    def test_only_http_https_and_file_urls(self, url, tmp_path):
        with pytest.raises(ConfigError, match="only http, https, file URLs|no host"):
            download(url, tmp_path / "data.zip")


class TestRedirectsAndLocalFiles:
    def test_redirect_is_followed(self, file_server, tmp_path):
        file_server.script("/captcha_images_v2.zip", Reply(body=PAYLOAD))
        url = file_server.script("/raw/master/captcha_images_v2.zip",
                                 Reply(302, headers={"Location": "/captcha_images_v2.zip"}))
        result = download(url, tmp_path / "data.zip", sha256=PAYLOAD_SHA256, settings=FAST)
        assert result.sha256 == PAYLOAD_SHA256
        assert len(file_server.hits("/raw/master/captcha_images_v2.zip")) == 1
        assert len(file_server.hits("/captcha_images_v2.zip")) == 1

    def test_file_url_goes_through_the_same_checks(self, tmp_path):
        source = tmp_path / "source.zip"
        source.write_bytes(PAYLOAD)
        result = download(source.as_uri(), tmp_path / "out" / "data.zip", sha256=PAYLOAD_SHA256)
        assert result.path.read_bytes() == PAYLOAD
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            download(source.as_uri(), tmp_path / "bad" / "data.zip", sha256="1" * 64)
        assert contents(tmp_path / "bad") == []

    def test_missing_local_file(self, tmp_path):
        with pytest.raises(DownloadError, match="no such file"):
            download((tmp_path / "nothing.zip").as_uri(), tmp_path / "data.zip")


class TestCache:
    def test_second_download_does_not_touch_the_network(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        download(url, tmp_path / "data.zip", sha256=PAYLOAD_SHA256, settings=FAST)
        again = download(url, tmp_path / "data.zip", sha256=PAYLOAD_SHA256, settings=FAST)
        assert again.attempts == 0 and again.sha256 == PAYLOAD_SHA256
        assert len(file_server.hits("/data.zip")) == 1

    def test_a_local_source_is_copied_again_only_when_it_changed(self, tmp_path):
        source = tmp_path / "source.zip"
        source.write_bytes(PAYLOAD)
        download(source.as_uri(), tmp_path / "out" / "data.zip")
        assert download(source.as_uri(), tmp_path / "out" / "data.zip").attempts == 0
        source.write_bytes(PAYLOAD + b"more")
        again = download(source.as_uri(), tmp_path / "out" / "data.zip")
        assert again.attempts == 1 and again.path.read_bytes() == PAYLOAD + b"more"

    def test_a_copy_that_fails_its_checksum_is_fetched_again(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        (tmp_path / "data.zip").write_bytes(b"stale")
        result = download(url, tmp_path / "data.zip", sha256=PAYLOAD_SHA256, settings=FAST)
        assert result.attempts == 1 and result.path.read_bytes() == PAYLOAD

    def test_killed_download_leaves_nothing_a_later_run_would_trust(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, stall_after=100_000, stall=30),
                                 Reply(body=PAYLOAD))
        target = tmp_path / "data.zip"
        code = ("import sys; from ocr_core.data.download import download, DownloadSettings; "
                "download(sys.argv[1], sys.argv[2], settings=DownloadSettings(read_timeout=60))")
        child = subprocess.Popen([sys.executable, "-c", code, url, str(target)],
                                 cwd=Path(__file__).resolve().parents[3])
        try:
            deadline = time.monotonic() + 30
            while not any(p.stat().st_size for p in tmp_path.glob(".tmp-*")):
                assert time.monotonic() < deadline and child.poll() is None, "download never began"
                time.sleep(0.05)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert not target.exists()
        result = download(url, target, settings=FAST)
        assert result.attempts == 1 and result.sha256 == PAYLOAD_SHA256


class TestHelpers:
    def test_progress_reports_the_end(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        seen = []
        download(url, tmp_path / "data.zip", settings=FAST,
                 progress=lambda received, total: seen.append((received, total)))
        assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))

    def test_retry_delay_doubles_with_jitter_and_is_capped(self):
        settings = DownloadSettings(backoff=1.0, max_delay=5.0)
        rng = random.Random(1)
        for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
            delays = {retry_delay(attempt, settings, None, rng) for _ in range(50)}
            assert all(ceiling / 2 <= d <= ceiling for d in delays)
            assert len(delays) > 1  # jittered
        assert retry_delay(1, settings, 3.0, rng) == 3.0
        assert retry_delay(1, settings, 600.0, rng) == 5.0

    def test_parse_retry_after(self):
        assert parse_retry_after("7") == 7.0
        assert parse_retry_after(None) is None
        assert parse_retry_after("soon") is None
        in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
        assert 55 <= parse_retry_after(in_a_minute) <= 60
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0

    def test_check_url_and_file_name(self):
        assert check_url("https://github.com/a/b/raw/master/x.zip").endswith("x.zip")
        assert file_name_of("https://host/raw/master/captcha_images_v2.zip?x=1") == \
            "captcha_images_v2.zip"
        assert file_name_of("https://host/", "archive.zip") == "archive.zip"

    @pytest.mark.parametrize("bad", [{"attempts": 0}, {"read_timeout": 0}, {"backoff": -1}])
    def test_settings_are_checked(self, bad):
        with pytest.raises(ConfigError):
            DownloadSettings(**bad)
