"""A real HTTP server on 127.0.0.1 for download tests, with faults scripted per path.

`server.script("/data.zip", Reply(503), Reply(503), Reply(body=payload))` answers the first two
requests with 503 and every later one with the payload (the last reply repeats). Each request's
arrival time is recorded (by path, query ignored), so tests can count attempts and measure the
waits between them.

A reply with an ETag or Last-Modified header answers a conditional request that matches it
(If-None-Match, If-Modified-Since) with 304 Not Modified, as a real server would; each
request's headers are kept (`request_headers`).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status code.
        body: the full body; Content-Length announces all of it, unless `announce_length` is
            False: then no Content-Length, and closing the connection ends the body.
        headers: extra headers (Retry-After, Location, ...).
        delay: seconds to wait before the status line (a slow server).
        truncate_at: send only this many body bytes, then drop the connection.
        stall_after: send this many body bytes, then wait `stall` seconds before the rest.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_at: int | None = None
    stall_after: int | None = None
    stall: float = 0.0
    announce_length: bool = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        reply = self.server.owner.next_reply(urlsplit(self.path).path, dict(self.headers))
        time.sleep(reply.delay)
        if _not_modified(reply, self.headers):
            self.send_response(304)
            for name in ("ETag", "Last-Modified"):
                if name in reply.headers:
                    self.send_header(name, reply.headers[name])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.announce_length:
            self.send_header("Content-Length", str(len(reply.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if reply.truncate_at is not None:
            self.wfile.write(reply.body[: reply.truncate_at])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if reply.stall_after is not None:
            self.wfile.write(reply.body[: reply.stall_after])
            self.wfile.flush()
            time.sleep(reply.stall)
            self.wfile.write(reply.body[reply.stall_after :])
        else:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Quiet: tests read the request log instead."""


def _not_modified(reply: Reply, request: object) -> bool:
    if reply.status != 200:
        return False
    etag, modified = reply.headers.get("ETag"), reply.headers.get("Last-Modified")
    if etag and request.get("If-None-Match"):
        return request.get("If-None-Match") == etag
    return bool(modified) and request.get("If-Modified-Since") == modified


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (timeout test) breaks the pipe; that is expected here."""


class FaultServer:
    """Serves scripted replies on 127.0.0.1 from a background thread; use as a context manager."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._scripts: dict[str, list[Reply]] = {}
        self._requests: dict[str, list[float]] = {}
        self._headers: dict[str, list[dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def script(self, path: str, *replies: Reply) -> str:
        """Answer requests for `path` with `replies` in turn (the last repeats); returns the URL."""
        with self._lock:
            self._scripts[path] = list(replies)
            self._requests[path] = []
            self._headers[path] = []
        return self.url(path)

    def next_reply(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        with self._lock:
            self._requests.setdefault(path, []).append(time.monotonic())
            self._headers.setdefault(path, []).append(headers or {})
            script = self._scripts.get(path)
            if not script:
                return Reply(404, b"not found")
            return script.pop(0) if len(script) > 1 else script[0]

    def request_headers(self, path: str) -> list[dict[str, str]]:
        """The headers of each request for `path`, in order."""
        with self._lock:
            return list(self._headers.get(path, []))

    def hits(self, path: str) -> list[float]:
        """Arrival times (time.monotonic) of the requests for `path`."""
        with self._lock:
            return list(self._requests.get(path, []))
