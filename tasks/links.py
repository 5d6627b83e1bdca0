"""Links to result files in artifacts: `file://` by default, or a URL others can open.

A `file://` link opens only on a machine that sees the same path (the one that wrote it, or a
shared file system mounted at the same place). Where the results root is served over HTTP (an
object store, a file server), set OCR_PIPELINE_LINK_BASE_URL to the URL that serves it and
OCR_PIPELINE_LINK_ROOT to the local folder it serves (default: the results root); files under
that folder are then linked through the URL. Set both on every machine that runs tasks.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

LINK_BASE_URL_ENV = "OCR_PIPELINE_LINK_BASE_URL"
LINK_ROOT_ENV = "OCR_PIPELINE_LINK_ROOT"


def artifact_link(path: str | os.PathLike[str]) -> str:
    """A link to `path` for an artifact: through the base URL when configured and `path` is
    under its root, else a `file://` URI."""
    from ocr_core.config import default_results_dir

    path = Path(path).absolute()
    base = os.environ.get(LINK_BASE_URL_ENV)
    if base:
        root = Path(os.environ.get(LINK_ROOT_ENV) or default_results_dir()).absolute()
        if path.is_relative_to(root):
            return base.rstrip("/") + "/" + quote(path.relative_to(root).as_posix())
    return path.as_uri()
