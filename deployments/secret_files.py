"""Secret files (passwords, auth strings, URLs with credentials): readable by their owner only
from the first byte, and complete or absent."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


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


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, created with `make()` (mode 0600) on first use."""
    if not path.is_file():
        write_secret(path, make())
    return path.read_text().strip()
