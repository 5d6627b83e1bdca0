"""Where a download may go: no private network from a served run or a public redirect, no files
outside the allowed roots.

A served run (a flow run started by the Prefect server) takes its URL from whoever reaches the
server; unchecked, the worker would fetch what they name: its own files, its cloud's metadata
service, the team's internal services (server-side request forgery). The rules:

- `file://` in a served run: only a file under the allowed roots, symbolic links resolved.
- Every address a host resolves to, for the first URL and for every redirect hop, must be public
  (not loopback, link-local, private, shared, multicast, reserved or unspecified; IPv4 and IPv6,
  IPv4 inside IPv6 included). Once connected, the socket's peer is checked again, so a name that
  resolves to another address the second time (DNS rebinding) is caught too.
- A local run keeps today's freedom for the URL it was given: a private first host may redirect to
  other private hosts. Once a hop is public, a redirect to a private address is refused in every
  run: a public server must not steer the client into its network.
- `OCR_PIPELINE_ALLOW_PRIVATE_HOSTS` in the environment of the process that downloads (the
  serving process, the worker) makes exceptions: `1` allows every private address in every hop;
  a comma-separated list of `host` or `host:port` allows only those (a team's own mirror, the
  tests' server on 127.0.0.1). In Python: `TargetPolicy(allow_private=..., private_hosts=...)`.
  It is never a form field: whoever fills in the form must not be able to lift it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ocr_core.errors import DownloadError

ALLOW_PRIVATE_HOSTS_ENV = "OCR_PIPELINE_ALLOW_PRIVATE_HOSTS"
MAX_REDIRECTS = 10
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def private_hosts_setting(environ: Mapping[str, str] = os.environ) -> tuple[bool, frozenset[str]]:
    """`$OCR_PIPELINE_ALLOW_PRIVATE_HOSTS` as (every private address allowed, the hosts allowed)."""
    value = environ.get(ALLOW_PRIVATE_HOSTS_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "*"):
        return True, frozenset()
    if value in ("", "0", "false", "no"):
        return False, frozenset()
    return False, frozenset(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class TargetPolicy:
    """What one run's downloads may reach.

    Attributes:
        allowed_roots: None for a local run (file:// anywhere, a private first host allowed);
            for a served run, the folders a file:// URL must lie under.
        allow_private: private addresses allowed in every hop (see the module's docstring).
        private_hosts: hosts (`name`, `name:port` or `[ipv6]:port`, lower case) that may be
            private in any hop.
    """

    allowed_roots: tuple[str, ...] | None = None
    allow_private: bool = False
    private_hosts: frozenset[str] = frozenset()

    @classmethod
    def for_run(cls, allowed_roots: Sequence[str] | None,
                environ: Mapping[str, str] = os.environ) -> TargetPolicy:
        """The policy of a run with these roots (None: local), private hosts as the environment says."""
        roots = None if allowed_roots is None else tuple(allowed_roots)
        return cls(roots, *private_hosts_setting(environ))

    @property
    def served(self) -> bool:
        return self.allowed_roots is not None


def address_kind(address: str) -> str | None:
    """None for a public address; else what it is: 'loopback', 'link-local', 'private', ..."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope ("fe80::1%eth0") goes
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return address_kind(str(embedded))
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def check_file_source(source: Path, policy: TargetPolicy) -> Path:
    """`source` resolved; in a served run it must lie under the allowed roots.

    Raises:
        ConfigError: a served run's file:// URL outside the allowed roots.
    """
    if policy.allowed_roots is None:
        return source
    from ocr_core.guards.allowed_roots import (
        check_under_roots,  # config imports us, allowed_roots imports layout
    )

    return Path(check_under_roots(source, list(policy.allowed_roots), "url"))


class HopGuard:
    """Checks the hops of one download (the URL, then each redirect) against a policy."""

    def __init__(self, url: str, policy: TargetPolicy) -> None:
        self.url = url
        self.policy = policy
        self.seen_public = False

    def private_allowed(self, host: str, port: int) -> bool:
        """Whether this hop may reach a private address of `host:port`."""
        policy = self.policy
        host = host.lower()
        named = {host, f"{host}:{port}", f"[{host}]:{port}"}  # an IPv6 address with a port: [::1]:80
        return (policy.allow_private or not (policy.served or self.seen_public)
                or not named.isdisjoint(policy.private_hosts))

    def check_url(self, url: str) -> None:
        """Refuse `url` if its host resolves to an address this hop may not reach."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadError(f"{self.url}: refused a redirect to {url!r} (only http and https)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise DownloadError(f"{self.url}: refused {url!r}: {error}") from None
        try:
            infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        except OSError:
            return  # the request fails with its own error; a later connect is still checked
        self.check_addresses(parts.hostname, port, [info[4][0] for info in infos])

    def check_addresses(self, host: str, port: int, addresses: Sequence[str]) -> None:
        """Refuse if one of `host`'s `addresses` is not public and this hop may not reach it."""
        kinds = {address: address_kind(address) for address in addresses}
        if not self.private_allowed(host, port):
            for address, kind in kinds.items():
                if kind is not None:
                    why = "a served run" if self.policy.served else "a redirect from a public host"
                    raise DownloadError(
                        f"{self.url}: refused {host}:{port} ({address}, a {kind} address): {why} "
                        f"may only reach public addresses; {ALLOW_PRIVATE_HOSTS_ENV}=HOST:PORT "
                        "where the download runs allows a private one")
        if any(kind is None for kind in kinds.values()):
            self.seen_public = True


_active_guard: ContextVar[HopGuard | None] = ContextVar("ocr_pipeline_hop_guard", default=None)


def _check_peer(connection: HTTPConnection) -> None:
    guard = _active_guard.get()
    if guard is None or connection.sock is None:
        return
    try:
        guard.check_addresses(str(connection.host), int(connection.port or 0),
                              [connection.sock.getpeername()[0]])
    except DownloadError:
        connection.close()
        raise


class _PeerCheckedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _PeerCheckedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _PeerCheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PeerCheckedHTTPConnection


class _PeerCheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PeerCheckedHTTPSConnection


class _PeerCheckedAdapter(HTTPAdapter):
    """Direct connections check their peer address (through a proxy, the proxy resolves names)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PeerCheckedHTTPPool,
                                                   "https": _PeerCheckedHTTPSPool}


def checked_session() -> requests.Session:
    """A session whose direct connections are checked by the guard of `get_checked`."""
    session = requests.Session()
    adapter = _PeerCheckedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@contextmanager
def _guarding(guard: HopGuard) -> Iterator[None]:
    token = _active_guard.set(guard)
    try:
        yield
    finally:
        _active_guard.reset(token)


def get_checked(session: requests.Session, guard: HopGuard, **kwargs) -> requests.Response:
    """GET `guard.url`, following redirects itself so that each hop is checked before it is asked.

    Args:
        session: from `checked_session` (its connections check their peer).
        guard: the download's hop guard.
        **kwargs: passed to `session.get` (stream, timeout, headers).

    Raises:
        DownloadError: a hop is refused, or more than `MAX_REDIRECTS` redirects.
    """
    url = guard.url
    guard.seen_public = False  # each attempt starts again from the URL it was given
    with _guarding(guard):
        for _ in range(MAX_REDIRECTS + 1):
            guard.check_url(url)
            response = session.get(url, allow_redirects=False, **kwargs)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUS or not location:
                return response
            response.close()
            url = urllib.parse.urljoin(url, location)
    raise DownloadError(f"{guard.url}: more than {MAX_REDIRECTS} redirects")
