"""Locks on an object store, made of conditional writes: a lease that its holder renews.

`locks/<name>.json` holds `{"holder": ..., "expires": ...}`. Taking the lock creates the object
only if it is absent (`If-None-Match: *`), or replaces a free or expired one only if it is still
the version read (`If-Match`), so two takers cannot both win. The holder renews the lease every
third of its time to live; a holder that dies stops renewing, and the lock is free once its lease
ran out (`$OCR_PIPELINE_LEASE_SECONDS`, default 60). Releasing writes the lock free.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid

from ocr_core.storage.errors import LockTimeout, StorageConflict
from ocr_core.storage.roots import KeyLock, Root

logger = logging.getLogger(__name__)

LEASE_ENV = "OCR_PIPELINE_LEASE_SECONDS"


def lease_seconds() -> float:
    return float(os.environ.get(LEASE_ENV, "60"))


class Lease(KeyLock):
    """One lock object on a root; `acquire` and `release` it, or hold it with `held()`."""

    def __init__(self, root: Root, key: str) -> None:
        self.root = root
        self.key = key
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ttl = lease_seconds()
        self._version: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _content(self, held: bool) -> bytes:
        expires = time.time() + self.ttl if held else 0.0
        return json.dumps({"holder": self.holder if held else None, "expires": expires}).encode()

    def state(self) -> tuple[dict, str] | None:
        """The lock object's content and version, or None when there is none."""
        while True:
            try:
                data, version = self.root.read_versioned(self.key)
                break
            except FileNotFoundError:
                return None
            except StorageConflict:  # replaced while it was read: read the new one
                continue
        try:
            info = json.loads(data)
        except ValueError:
            info = {}
        return info, version

    def is_locked(self) -> bool:
        """Whether some holder's lease on the lock is running now."""
        state = self.state()
        return state is not None and _running(state[0])

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another holder's lease runs."""
        try:
            self._version = self.root.write_bytes(self.key, self._content(True), create_only=True)
        except FileExistsError:
            state = self.state()
            if state is None or _running(state[0]):
                return False
            try:
                self._version = self.root.write_bytes(self.key, self._content(True),
                                                      if_version=state[1])
            except (StorageConflict, FileNotFoundError):
                return False
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {self.key}", daemon=True)
        self._renewer.start()
        return True

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (at most `timeout` seconds; LockTimeout after)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.1
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(f"{self.root.location(self.key)} stayed locked")
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)

    def release(self) -> None:
        """Stop renewing and write the lock free (unless another holder took it meanwhile)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self._version is not None:
            with contextlib.suppress(StorageConflict, FileNotFoundError):
                self.root.write_bytes(self.key, self._content(False), if_version=self._version)
            self._version = None

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._version = self.root.write_bytes(self.key, self._content(True),
                                                      if_version=self._version)
            except StorageConflict:
                logger.error("lost the lock %s: another holder took it after the lease ran out",
                             self.root.location(self.key))
                self._version = None
                return
            except Exception as error:  # a passing store error: try again at the next renewal
                logger.warning("could not renew the lock %s: %s", self.root.location(self.key), error)


def _running(info: dict) -> bool:
    return bool(info.get("holder")) and float(info.get("expires", 0)) > time.time()
