"""The one place that touches private attributes of the libraries (TensorFlow's graph freezing).

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
