"""Links to result files in artifacts: where the results root is, or a URL others can open.

Inside a step on its results root (`tasks.roots`), a file of a local root is linked as a
`file://` URI (it opens only on a machine that sees the same path) and a key of a store root
as its URL (`s3://bucket/prefix/plots/...`). Where the root is served over HTTP (an object
store's web endpoint, a file server), set OCR_PIPELINE_LINK_BASE_URL to the URL that serves the
root: every file under it is then linked through that URL. Set it on every machine that runs
tasks.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from ocr_core.storage import Root, is_url
from tasks.roots import current_root

LINK_BASE_URL_ENV = "OCR_PIPELINE_LINK_BASE_URL"


def _key(path: str | os.PathLike[str]) -> tuple[Root | None, str | None]:
    try:
        root = current_root()
    except RuntimeError:  # not in a step on a root: a file of this machine
        return None, None
    return root, root.key_of(path)


def stored_location(path: str | os.PathLike[str]) -> str:
    """Where the local file `path` is kept: its path, or its URL on the running step's store."""
    root, key = _key(path)
    return os.fspath(path) if root is None or key is None else root.location(key)


def artifact_link(path: str | os.PathLike[str]) -> str:
    """A link to the local file `path` for an artifact (see the module's docstring); a store
    URL is its own link."""
    if is_url(path):
        return os.fspath(path)
    root, key = _key(path)
    base = os.environ.get(LINK_BASE_URL_ENV)
    if root is not None and key is not None:
        if base:
            return base.rstrip("/") + "/" + quote(key)
        if not root.is_local:
            return root.location(key)
    return Path(path).absolute().as_uri()
