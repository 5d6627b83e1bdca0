"""The one place that touches private attributes of the libraries (TensorFlow's graph freezing,
TFLite metadata).

Nothing else in the project reads or writes a `_private` attribute of Prefect, Keras or
TensorFlow (tests/ocr_core/test_compat.py checks both: that this still works on the installed
versions, and that no other module does it). An upgrade that moves these fails those tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def freeze_function(concrete_function: Any) -> Callable[..., Any]:
    """`concrete_function` with its variables folded into the graph as constants.

    TensorFlow has no public API for it (`convert_variables_to_constants_v2` lives in
    `tensorflow.python.framework`); it lets the graph optimiser fold batch normalisation into
    the convolutions before it.
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete_function)


def tflite_with_metadata(model: bytes, entries: dict[str, bytes]) -> bytes:
    """A TFLite flatbuffer `model` with `entries` added to its `metadata` (name -> bytes).

    The schema's metadata field is public; the Python object API that edits it ships inside
    TensorFlow (`tensorflow.lite.tools.flatbuffer_utils`), not as a public module.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    tree.metadata = list(tree.metadata or [])
    for name, data in entries.items():
        buffer = schema.BufferT()
        buffer.data = list(data)
        tree.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(tree.buffers) - 1
        tree.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))
