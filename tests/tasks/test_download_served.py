"""download_archive in a served run (a deployment's, simulated with Prefect's runtime variable)
refuses hostile targets; in every run a body over the limit leaves nothing, cache entry included."""

import hashlib
import random
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prefect import flow
from prefect.logging import disable_run_logger

from ocr_core.errors import ConfigError, DownloadError
from ocr_core.guards.allowed_roots import ALLOWED_ROOTS_ENV
from ocr_core.guards.targets import ALLOW_PRIVATE_HOSTS_ENV
from tasks.download import download_archive
from tests.fault_server import FaultServer, Reply

PAYLOAD = random.Random(2).randbytes(150_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _quiet_run_logger(prefect_server):
    with disable_run_logger():
        yield


@pytest.fixture
def served_run(monkeypatch, results_dir):
    """Runs from here on count as a deployment's, confined to the results root."""
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "6a0b2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b")
    monkeypatch.setenv(ALLOWED_ROOTS_ENV, str(results_dir))
    monkeypatch.delenv(ALLOW_PRIVATE_HOSTS_ENV, raising=False)
    return monkeypatch


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def downloaded_files(results_dir: Path) -> list[Path]:
    return files_under(results_dir / "data")


@flow
def fetch(url: str, sha256: str | None, results_dir: Path, max_bytes: int):
    return download_archive(url, sha256, results_dir, 2.0, 2, 0.01, max_bytes=max_bytes)


class TestServedRun:
    def test_file_url_outside_the_roots_is_refused(self, served_run, results_dir, tmp_path):
        secret = tmp_path / "home" / "keys.zip"
        secret.parent.mkdir()
        secret.write_bytes(PAYLOAD)
        with pytest.raises(ConfigError, match=r"url=.*keys\.zip is outside the allowed roots"):
            download_archive.fn(secret.as_uri(), None, results_dir)
        assert downloaded_files(results_dir) == []

    def test_a_loopback_url_is_refused(self, served_run, file_server, results_dir):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        with pytest.raises(DownloadError, match=r"loopback address\): a served run"):
            download_archive.fn(url, None, results_dir, timeout=2, attempts=2, backoff=0.01)
        assert file_server.hits("/data.zip") == [] and downloaded_files(results_dir) == []

    def test_a_redirect_to_another_loopback_port_is_refused(self, served_run, file_server,
                                                            results_dir):
        with FaultServer() as internal:
            internal_url = internal.script("/metadata", Reply(body=b"credentials"))
            url = file_server.script("/data.zip", Reply(302, headers={"Location": internal_url}))
            served_run.setenv(ALLOW_PRIVATE_HOSTS_ENV, urlsplit(url).netloc)  # the "mirror" only
            with pytest.raises(DownloadError, match=r"refused 127\.0\.0\.1:\d+ .*loopback"):
                download_archive.fn(url, None, results_dir, timeout=2, attempts=2, backoff=0.01)
            assert internal.hits("/metadata") == []
        assert downloaded_files(results_dir) == []

    def test_the_allowed_mirror_downloads(self, served_run, file_server, results_dir):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        served_run.setenv(ALLOW_PRIVATE_HOSTS_ENV, urlsplit(url).netloc)
        record = download_archive.fn(url, DIGEST, results_dir, timeout=2)
        assert (results_dir / record.path).read_bytes() == PAYLOAD

    def test_a_local_runs_download_does_not_stand_in(self, file_server, results_dir, monkeypatch):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        assert fetch(url, DIGEST, results_dir, 2**20).content_digest == DIGEST  # local: cached, on disk
        monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "6a0b2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b")
        monkeypatch.setenv(ALLOWED_ROOTS_ENV, str(results_dir))
        with pytest.raises(DownloadError, match=r"loopback address\): a served run"):
            fetch(url, DIGEST, results_dir, 2**20)
        assert len(file_server.hits("/data.zip")) == 1


class TestSizeLimit:
    @pytest.mark.parametrize("announce_length", [True, False])
    def test_nothing_left_behind_and_nothing_cached(self, file_server, results_dir,
                                                    announce_length):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, announce_length=announce_length))
        for _ in range(2):
            with pytest.raises(DownloadError, match="over the download size limit of 100000 bytes"):
                fetch(url, DIGEST, results_dir, 100_000)
        assert len(file_server.hits("/data.zip")) == 2  # the failure was not cached
        assert downloaded_files(results_dir) == []
        assert not (results_dir / "data" / "downloads").exists() or not any(
            (results_dir / "data" / "downloads").iterdir())
