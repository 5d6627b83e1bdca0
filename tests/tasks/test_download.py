"""download_archive and extract_archive: task logic via .fn, caching through real flow runs."""

import hashlib
import shutil
from pathlib import Path

import pytest
from prefect import flow
from prefect.logging import disable_run_logger

from ocr_core.errors import DownloadError
from tasks.captcha import fingerprint_folder
from tasks.download import download_archive, download_folder, extract_archive
from tasks.validation import validate_images
from tests.fault_server import Reply

ZIP_PATH = "/captcha_images_v2.zip"


@pytest.fixture(autouse=True)
def _quiet_run_logger(prefect_server):
    with disable_run_logger():
        yield


class TestDownloadArchive:
    def test_downloads_into_the_results_root(self, file_server, results_dir, captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(503), Reply(body=captcha_zip))
        record = download_archive.fn(url, None, results_dir, timeout=2, attempts=3, backoff=0.01)
        assert record.attempts == 2
        assert record.content_digest == hashlib.sha256(captcha_zip).hexdigest()
        assert results_dir / record.path == download_folder(url, None, results_dir) / "captcha_images_v2.zip"
        assert (results_dir / record.path).read_bytes() == captcha_zip
        assert record.size == len(captcha_zip) and record.url == url

    def test_the_copy_on_disk_is_reused_with_a_checksum(self, file_server, results_dir,
                                                        captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip))
        digest = hashlib.sha256(captcha_zip).hexdigest()
        download_archive.fn(url, digest, results_dir, timeout=2)
        again = download_archive.fn(url, digest, results_dir, timeout=2)
        assert again.attempts == 0
        assert len(file_server.hits(ZIP_PATH)) == 1


class TestRevalidation:
    """Without a sha256 the URL may have moved on: every run asks the server."""

    @pytest.mark.parametrize("validator", [{"ETag": '"v1"'},
                                           {"Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}])
    def test_an_unchanged_file_is_revalidated_not_downloaded(self, file_server, results_dir,
                                                             captcha_zip, validator):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip, headers=validator))
        first = download_archive.fn(url, None, results_dir, timeout=2)
        again = download_archive.fn(url, None, results_dir, timeout=2)
        assert first.attempts == 1 and again.attempts == 0 and again.content_digest == first.content_digest
        conditional = file_server.request_headers(ZIP_PATH)[1]
        assert (conditional.get("If-None-Match") == validator.get("ETag")
                or conditional.get("If-Modified-Since") == validator.get("Last-Modified"))

    def test_a_changed_file_is_downloaded_again(self, file_server, results_dir, captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip, headers={"ETag": '"v1"'}))
        first = download_archive.fn(url, None, results_dir, timeout=2)
        newer = captcha_zip + b"\0"  # zip readers ignore trailing bytes; the digest changes
        file_server.script(ZIP_PATH, Reply(body=newer, headers={"ETag": '"v2"'}))
        again = download_archive.fn(url, None, results_dir, timeout=2)
        assert again.attempts == 1 and again.content_digest == hashlib.sha256(newer).hexdigest()
        assert again.path == first.path and (results_dir / again.path).read_bytes() == newer
        assert file_server.request_headers(ZIP_PATH)[0]["If-None-Match"] == '"v1"'

    def test_without_validators_the_file_is_fetched_again(self, file_server, results_dir,
                                                          captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip))
        download_archive.fn(url, None, results_dir, timeout=2)
        again = download_archive.fn(url, None, results_dir, timeout=2)
        assert again.attempts == 1 and len(file_server.hits(ZIP_PATH)) == 2

    def test_failure_is_a_download_error(self, file_server, results_dir):
        url = file_server.script(ZIP_PATH, Reply(404))
        with pytest.raises(DownloadError, match="HTTP 404"):
            download_archive.fn(url, None, results_dir, timeout=2, attempts=3, backoff=0.01)
        assert len(file_server.hits(ZIP_PATH)) == 1
        assert not any(download_folder(url, None, results_dir).glob("*"))


class TestExtractArchive:
    def test_finds_the_image_folder(self, file_server, results_dir, captcha_zip, captcha_dir):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip))
        images = extract_archive.fn(download_archive.fn(url, None, results_dir), results_dir)
        assert Path(images.path).name == "captcha_images_v2"
        assert images.path.startswith("data/extracted/")
        assert images.count == 40
        # the same images as the folder they were zipped from: later steps share its cache
        assert images.content_digest == fingerprint_folder.fn(captcha_dir).content_digest


@flow
def fetch(url: str, sha256: str | None, results_dir: Path, attempts: int):
    return download_archive(url, sha256, results_dir, 2.0, attempts, 0.01)


class TestDownloadCache:
    def test_keyed_by_url_and_checksum_not_retry_settings(self, file_server, results_dir,
                                                          captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip))
        digest = hashlib.sha256(captcha_zip).hexdigest()
        first = fetch(url, digest, results_dir, attempts=3)
        second = fetch(url, digest, results_dir, attempts=5)
        assert first == second and first.attempts == 1  # served by Prefect's cache
        assert len(file_server.hits(ZIP_PATH)) == 1
        other = fetch(url + "?mirror=2", digest, results_dir, attempts=3)
        assert other.attempts == 1 and len(file_server.hits(ZIP_PATH)) == 2

    def test_a_hit_whose_file_is_gone_downloads_again(self, file_server, results_dir, captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip))
        digest = hashlib.sha256(captcha_zip).hexdigest()
        first = fetch(url, digest, results_dir, attempts=3)
        (results_dir / first.path).unlink()
        second = fetch(url, digest, results_dir, attempts=3)
        assert second.attempts == 1 and (results_dir / second.path).read_bytes() == captcha_zip
        assert len(file_server.hits(ZIP_PATH)) == 2

    def test_without_a_checksum_each_run_revalidates(self, file_server, results_dir, captcha_zip):
        url = file_server.script(ZIP_PATH, Reply(body=captcha_zip, headers={"ETag": '"v1"'}))
        first = fetch(url, None, results_dir, attempts=3)
        second = fetch(url, None, results_dir, attempts=3)  # not served by Prefect's cache
        assert (first.attempts, second.attempts) == (1, 0)
        assert [h.get("If-None-Match") for h in file_server.request_headers(ZIP_PATH)] == [
            None, '"v1"']


def test_real_captchas_served_as_a_zip(file_server, results_dir, real_captcha_dir, tmp_path):
    """The shared copy of captcha_images_v2, zipped like the published file, passes every step."""
    archive = Path(shutil.make_archive(str(tmp_path / "captcha_images_v2"), "zip",
                                       real_captcha_dir.parent, real_captcha_dir.name))
    url = file_server.script(ZIP_PATH, Reply(body=archive.read_bytes()))
    images = extract_archive.fn(download_archive.fn(url, None, results_dir), results_dir)
    manifest = validate_images.fn(images, results_dir)
    assert manifest.count == images.count == len(list(real_captcha_dir.glob("*.png")))
    assert manifest.vocabulary == "2345678bcdefgmnpwxy"
