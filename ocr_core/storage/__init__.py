"""Where results live: a folder named by a URL (a plain path, `file://`, `s3://`, `gs://`).

One fsspec layer serves every root. Steps read and write local files (TensorFlow reads local
files): a local root is used in place; a store's keys are mirrored in a bounded scratch cache,
pulled before a step reads them and pushed whole after it wrote them. Keys are paths relative
to the root (`models/crnn-<key>`), so a copied root or prefix keeps its meaning.

    root = open_root("s3://bucket/ocr")
    with root.lock("train_model-abc"):
        folder = root.pull("datasets/abc")   # a local folder with the store's files
"""

from ocr_core.storage.local import LocalRoot
from ocr_core.storage.roots import Root, is_url, local_copies, local_copy, open_root, root_url
from ocr_core.storage.store import StoreRoot

__all__ = ["LocalRoot", "Root", "StoreRoot", "is_url", "local_copies", "local_copy", "open_root",
           "root_url"]
