"""Hostile download targets refused: file:// outside the roots, private hops, bodies over the limit.

Against real HTTP servers on 127.0.0.1 (tests/fault_server.py). A served run is a policy with
allowed roots; its exception for the test server is `private_hosts` (what
`OCR_PIPELINE_ALLOW_PRIVATE_HOSTS=127.0.0.1:PORT` gives).
"""

import contextlib
import datetime
import hashlib
import http.server
import ipaddress
import random
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ocr_core.data.download import DEFAULT_MAX_BYTES, DownloadSettings, download
from ocr_core.errors import ConfigError, DownloadError
from ocr_core.guards.targets import (
    ALLOW_PRIVATE_HOSTS_ENV,
    HopGuard,
    TargetPolicy,
    address_kind,
    private_hosts_setting,
)
from tests.fault_server import FaultServer, Reply

PAYLOAD = random.Random(1).randbytes(200_000)
FAST = DownloadSettings(attempts=3, connect_timeout=2, read_timeout=2, backoff=0.01)


def files_under(folder: Path) -> list[Path]:
    """Every file left under `folder`, hidden temporary files included."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def origin(url: str) -> str:
    return urlsplit(url).netloc


@contextlib.contextmanager
def tls_server(folder: Path, body: bytes):
    """An HTTPS server on 127.0.0.1 with a certificate for that address (written to
    folder/cert.pem); yields its URL and the list of requests it answered."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server dispatches to
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 - base signature
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/data.zip", seen
    finally:
        server.shutdown()
        server.server_close()


def served(roots: list[Path], *hosts: str) -> TargetPolicy:
    return TargetPolicy(allowed_roots=tuple(roots), private_hosts=frozenset(hosts))


class TestAddresses:
    @pytest.mark.parametrize(("address", "kind"), [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("fc00::1", "private"), ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
        ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"), ("240.0.0.1", "reserved"),
        ("8.8.8.8", None), ("2606:4700::1111", None), ("64:ff9b::808:808", None),
    ])
    def test_kind(self, address, kind):
        assert address_kind(address) == kind

    def test_setting(self):
        assert private_hosts_setting({}) == (False, frozenset())
        assert private_hosts_setting({ALLOW_PRIVATE_HOSTS_ENV: "1"}) == (True, frozenset())
        assert private_hosts_setting({ALLOW_PRIVATE_HOSTS_ENV: " Mirror.lan, 127.0.0.1:8000"}) == (
            False, frozenset({"mirror.lan", "127.0.0.1:8000"}))

    def test_a_public_hop_may_not_lead_into_the_network_even_locally(self):
        guard = HopGuard("http://mirror.lan/data.zip", TargetPolicy())
        guard.check_addresses("mirror.lan", 80, ["192.168.1.5"])  # a local run's own choice
        guard.check_addresses("public.example", 443, ["93.184.216.34"])
        with pytest.raises(DownloadError, match=r"refused 10\.0\.0\.1:80 .*a redirect from a public"):
            guard.check_addresses("10.0.0.1", 80, ["10.0.0.1"])

    def test_allowed_private_hosts_by_name_or_port(self):
        policy = served([Path("/srv")], "mirror.lan", "10.0.0.5:8080", "[fd00::5]:443")
        for host, port, address in (("Mirror.LAN", 80, "10.1.1.1"), ("10.0.0.5", 8080, "10.0.0.5"),
                                    ("fd00::5", 443, "fd00::5")):
            HopGuard("https://x/", policy).check_addresses(host, port, [address])
        with pytest.raises(DownloadError, match="refused 10.0.0.5:8081"):
            HopGuard("https://x/", policy).check_addresses("10.0.0.5", 8081, ["10.0.0.5"])

    def test_a_host_that_resolves_to_any_private_address_is_refused(self):
        guard = HopGuard("https://two.example/data.zip", served([Path("/srv")]))
        with pytest.raises(DownloadError, match=r"169\.254\.169\.254, a link-local address.*served"):
            guard.check_addresses("two.example", 443, ["93.184.216.34", "169.254.169.254"])


class TestServedRuns:
    def test_file_url_outside_the_roots_is_refused(self, tmp_path):
        secret = tmp_path / "elsewhere" / "secret.zip"
        secret.parent.mkdir()
        secret.write_bytes(PAYLOAD)
        roots = [tmp_path / "results"]
        with pytest.raises(ConfigError, match=r"url=.*secret\.zip is outside the allowed roots"):
            download(secret.as_uri(), tmp_path / "results" / "out" / "data.zip", policy=served(roots))
        assert files_under(tmp_path / "results") == []

    def test_a_link_inside_the_roots_to_a_file_outside_is_refused(self, tmp_path):
        secret = tmp_path / "secret.zip"
        secret.write_bytes(PAYLOAD)
        link = tmp_path / "results" / "innocent.zip"
        link.parent.mkdir()
        link.symlink_to(secret)
        with pytest.raises(ConfigError, match="outside the allowed roots"):
            download(link.as_uri(), tmp_path / "results" / "data.zip",
                     policy=served([tmp_path / "results"]))
        assert not (tmp_path / "results" / "data.zip").exists()

    def test_file_url_under_a_root_is_copied(self, tmp_path):
        source = tmp_path / "data" / "captchas.zip"
        source.parent.mkdir()
        source.write_bytes(PAYLOAD)
        result = download(source.as_uri(), tmp_path / "out" / "data.zip",
                          policy=served([tmp_path / "data"]))
        assert result.path.read_bytes() == PAYLOAD

    def test_a_loopback_url_is_refused_before_any_request(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        with pytest.raises(DownloadError, match=r"refused 127\.0\.0\.1:\d+ .*loopback.*served run"):
            download(url, tmp_path / "out" / "data.zip", settings=FAST, policy=served([tmp_path]))
        assert file_server.hits("/data.zip") == []
        assert files_under(tmp_path) == []

    def test_a_redirect_to_another_loopback_port_is_refused(self, file_server, tmp_path):
        with FaultServer() as internal:
            internal_url = internal.script("/admin", Reply(body=b"internal secrets"))
            url = file_server.script("/data.zip", Reply(302, headers={"Location": internal_url}))
            with pytest.raises(DownloadError, match=r"refused 127\.0\.0\.1:\d+ .*loopback"):
                download(url, tmp_path / "out" / "data.zip", settings=FAST,
                         policy=served([tmp_path], origin(url)))
            assert len(file_server.hits("/data.zip")) == 1  # not retried
            assert internal.hits("/admin") == []
        assert files_under(tmp_path) == []

    def test_the_allowed_host_itself_downloads(self, file_server, tmp_path):
        file_server.script("/data.zip", Reply(body=PAYLOAD))
        url = file_server.script("/raw/data.zip", Reply(302, headers={"Location": "/data.zip"}))
        result = download(url, tmp_path / "data.zip", settings=FAST,
                          policy=served([tmp_path], origin(url)))
        assert result.path.read_bytes() == PAYLOAD

    def test_the_connected_address_is_checked_again(self, file_server, tmp_path, monkeypatch):
        """A name that resolved to a public address, then to 127.0.0.1 (DNS rebinding)."""
        url = file_server.script("/data.zip", Reply(body=PAYLOAD))
        monkeypatch.setattr(HopGuard, "check_url", lambda self, url: None)  # "it was public"
        with pytest.raises(DownloadError, match=r"127\.0\.0\.1, a loopback address"):
            download(url, tmp_path / "data.zip", settings=FAST, policy=served([tmp_path]))
        assert file_server.hits("/data.zip") == []

    def test_https_connections_are_checked_too(self, tmp_path, monkeypatch):
        with tls_server(tmp_path, PAYLOAD) as (url, requests_seen):
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
            assert download(url, tmp_path / "local.zip", settings=FAST).size == len(PAYLOAD)
            monkeypatch.setattr(HopGuard, "check_url", lambda self, url: None)
            with pytest.raises(DownloadError, match=r"127\.0\.0\.1, a loopback address"):
                download(url, tmp_path / "served.zip", settings=FAST, policy=served([tmp_path]))
            assert len(requests_seen) == 1  # the served attempt sent no request

    @pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/data.zip"])
    def test_a_redirect_to_another_scheme_is_refused(self, file_server, tmp_path, location):
        url = file_server.script("/data.zip", Reply(302, headers={"Location": location}))
        with pytest.raises(DownloadError, match=r"refused a redirect to .* \(only http and https\)"):
            download(url, tmp_path / "data.zip", settings=FAST)

    def test_a_redirect_to_a_bad_port_is_one_error(self, file_server, tmp_path):
        url = file_server.script("/data.zip", Reply(302, headers={"Location": "http://x:99999/"}))
        with pytest.raises(DownloadError, match="refused 'http://x:99999/': Port out of range"):
            download(url, tmp_path / "data.zip", settings=FAST)

    def test_a_redirect_loop_ends(self, file_server, tmp_path):
        url = file_server.script("/loop", Reply(302, headers={"Location": "/loop"}))
        with pytest.raises(DownloadError, match="more than 10 redirects"):
            download(url, tmp_path / "data.zip", settings=FAST)


class TestLocalRuns:
    def test_a_loopback_redirect_to_another_port_is_followed(self, file_server, tmp_path):
        with FaultServer() as mirror:
            target = mirror.script("/data.zip", Reply(body=PAYLOAD))
            url = file_server.script("/data.zip", Reply(302, headers={"Location": target}))
            result = download(url, tmp_path / "data.zip", settings=FAST)
        assert result.path.read_bytes() == PAYLOAD

    def test_any_file_url(self, tmp_path):
        source = tmp_path / "anywhere.zip"
        source.write_bytes(PAYLOAD)
        assert download(source.as_uri(), tmp_path / "out" / "data.zip").size == len(PAYLOAD)


class TestSizeLimit:
    LIMIT = DownloadSettings(attempts=3, connect_timeout=2, read_timeout=2, backoff=0.01,
                             max_bytes=100_000)

    def test_default_is_well_above_the_dataset(self):
        assert DownloadSettings().max_bytes == DEFAULT_MAX_BYTES == 64 * 2**20

    @pytest.mark.parametrize("announce_length", [True, False])
    def test_a_larger_body_is_refused_and_nothing_kept(self, file_server, tmp_path, announce_length):
        url = file_server.script("/data.zip", Reply(body=PAYLOAD, announce_length=announce_length))
        target = tmp_path / "downloads" / "key" / "data.zip"
        what = "it announces 200000 bytes" if announce_length else "the body is longer"
        with pytest.raises(DownloadError, match=f"refused, {what}, over the download size limit "
                                                r"of 100000 bytes .*nothing was kept"):
            download(url, target, settings=self.LIMIT)
        assert len(file_server.hits("/data.zip")) == 1  # not retried
        assert files_under(tmp_path) == []
        assert not target.parent.exists()

    def test_a_body_without_length_under_the_limit_downloads(self, file_server, tmp_path):
        small = PAYLOAD[:90_000]
        url = file_server.script("/data.zip", Reply(body=small, announce_length=False))
        result = download(url, tmp_path / "data.zip", settings=self.LIMIT,
                          sha256=hashlib.sha256(small).hexdigest())
        assert result.size == 90_000

    def test_a_larger_local_file_is_refused(self, tmp_path):
        source = tmp_path / "big.zip"
        source.write_bytes(PAYLOAD)
        with pytest.raises(DownloadError, match="the file has 200000 bytes, over the download"):
            download(source.as_uri(), tmp_path / "out" / "data.zip", settings=self.LIMIT)
        assert files_under(tmp_path / "out") == []

    def test_an_old_copy_survives_a_new_body_over_the_limit(self, file_server, tmp_path):
        small = PAYLOAD[:1000]
        url = file_server.script("/data.zip", Reply(body=small, headers={"ETag": '"v1"'}))
        download(url, tmp_path / "data.zip", settings=self.LIMIT)
        file_server.script("/data.zip", Reply(body=PAYLOAD, headers={"ETag": '"v2"'}))
        with pytest.raises(DownloadError, match="over the download size limit"):
            download(url, tmp_path / "data.zip", settings=self.LIMIT)
        assert (tmp_path / "data.zip").read_bytes() == small
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip", "data.zip.validators.json"]

    def test_settings_are_checked(self):
        with pytest.raises(ConfigError, match="max_bytes must be at least 1"):
            DownloadSettings(max_bytes=0)
