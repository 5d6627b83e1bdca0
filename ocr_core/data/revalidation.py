"""Is a downloaded copy still current? The validators its server sent, kept beside the file.

An http(s) copy keeps the ETag and Last-Modified it came with, and the next download asks with
If-None-Match / If-Modified-Since (304: reuse it). A file:// copy keeps its source's size and
modification time.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

from ocr_core.files import read_json, remove_path, write_json


def validators_path(target: Path) -> Path:
    """Where the validators (ETag, Last-Modified) of a downloaded file are kept."""
    return target.with_name(f"{target.name}.validators.json")


def read_validators(target: Path) -> dict[str, str]:
    """The validators kept for `target` (none if it has none)."""
    path = validators_path(target)
    return read_json(path) if path.is_file() else {}


def write_validators(target: Path, validators: dict[str, str]) -> None:
    """Keep `validators` for `target`; with none, forget the old ones."""
    if validators:
        write_json(validators_path(target), validators)
    else:
        remove_path(validators_path(target))


def response_validators(headers: dict[str, str]) -> dict[str, str]:
    """The ETag and Last-Modified of a response, as kept beside its file."""
    return {name: headers[header] for name, header in (
        ("etag", "ETag"), ("last_modified", "Last-Modified")) if header in headers}


def file_validators(url: str) -> dict[str, str]:
    """Size and modification time of a file:// URL's source (none if it is missing)."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    if not source.is_file():
        return {}
    stat = source.stat()
    return {"size": str(stat.st_size), "mtime_ns": str(stat.st_mtime_ns)}


def conditional_headers(validators: dict[str, str]) -> dict[str, str]:
    """The If-None-Match / If-Modified-Since headers that revalidate a copy."""
    headers = {}
    if "etag" in validators:
        headers["If-None-Match"] = validators["etag"]
    if "last_modified" in validators:
        headers["If-Modified-Since"] = validators["last_modified"]
    return headers
