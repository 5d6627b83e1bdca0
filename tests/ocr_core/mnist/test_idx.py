import gzip

import numpy as np
import pytest

from ocr_core.errors import DataError
from ocr_core.mnist.idx import read_idx
from tests.mnist_files import idx_bytes


class TestReadIdx:
    def test_reads_hand_built_header_and_values(self, tmp_path):
        # 0, 0, type 0x08, 2 dimensions, sizes 2 and 3 (big-endian), then 6 bytes.
        path = tmp_path / "tiny-idx2-ubyte"
        path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255]))
        array = read_idx(path)
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, [[1, 2, 3], [4, 5, 255]])

    def test_gzip_by_suffix(self, tmp_path):
        images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
        path = tmp_path / "images-idx3-ubyte.gz"
        path.write_bytes(gzip.compress(idx_bytes(images)))
        np.testing.assert_array_equal(read_idx(path), images)

    def test_labels_are_one_dimensional(self, tmp_path):
        path = tmp_path / "labels-idx1-ubyte"
        path.write_bytes(idx_bytes(np.array([7, 0, 9], np.uint8)))
        assert read_idx(path).tolist() == [7, 0, 9]

    @pytest.mark.parametrize(("content", "message"), [
        (b"\x89PNG\r\n\x1a\n", "is not an IDX file"),
        (b"", "is not an IDX file"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]), "type 0x0d is not unsigned byte"),
        (bytes([0, 0, 8, 2, 0, 0, 0, 2]), "truncated IDX header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]), r"shape \(4,\) \(4 bytes\) but 3 bytes follow"),
    ])
    def test_bad_files_are_named(self, tmp_path, content, message):
        path = tmp_path / "broken-idx1-ubyte"
        path.write_bytes(content)
        with pytest.raises(DataError, match=message) as error:
            read_idx(path)
        assert str(path) in str(error.value)

    def test_corrupt_gzip(self, tmp_path):
        path = tmp_path / "labels-idx1-ubyte.gz"
        path.write_bytes(gzip.compress(idx_bytes(np.zeros(50, np.uint8)))[:-12])
        with pytest.raises(DataError, match="cannot read IDX file"):
            read_idx(path)
