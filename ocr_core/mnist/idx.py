"""The IDX format of the original MNIST files: two zero bytes, a type code, the number of
dimensions, one big-endian uint32 per dimension, then the raw values."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from ocr_core.errors import DataError

UNSIGNED_BYTE = 0x08  # the only type MNIST uses


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes; gzip-compressed when the name ends in `.gz`.

    Returns:
        uint8 array of the shape in the header: (count, 28, 28) for images, (count,) for labels.

    Raises:
        DataError: the file is unreadable, not IDX, not unsigned bytes, or its size does not
            match its header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read IDX file {path}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (starts with {data[:4].hex() or 'nothing'})")
    type_code, dimensions = data[2], data[3]
    if type_code != UNSIGNED_BYTE:
        raise DataError(
            f"{path}: IDX type 0x{type_code:02x} is not unsigned byte (0x08), the type of MNIST")
    header = 4 + 4 * dimensions
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{dimensions}I", data[4:header])
    if len(data) - header != math.prod(shape):
        raise DataError(f"{path}: header says shape {shape} ({math.prod(shape)} bytes) but "
                        f"{len(data) - header} bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
