"""Secret files (passwords, auth strings, URLs with credentials): readable by their owner only
from the first byte, and complete or absent."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


class PrivacyError(RuntimeError):
    """A secret file that others may read or change; printed as one line."""


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, replacing it atomically.

    The bytes go to a new file in the same folder, created with O_CREAT | O_EXCL and mode 0600
    (never readable by others, not even for a moment), flushed, then renamed over `path`.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_secret(path: Path) -> str:
    """The secret in `path`, which must be private to its owner.

    Raises:
        PrivacyError: the file has group or other permission bits; the message says how to fix it.
    """
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PrivacyError(f"{path} is open to other accounts (mode {mode:04o}): make it private "
                           f"with `chmod 600 {path}` (or remove it to have a new one made)")
    return path.read_text().strip()


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, created with `make()` (mode 0600) on first use; an existing one must
    be private (`read_secret`)."""
    if not path.is_file():
        write_secret(path, make())
    return read_secret(path)
