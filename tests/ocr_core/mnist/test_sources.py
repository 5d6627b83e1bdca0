import socket
import time

import numpy as np
import pytest

from ocr_core.errors import DataError, DownloadError
from ocr_core.guards.targets import TargetPolicy
from ocr_core.mnist import sources
from tests.mnist_files import write_idx_copy, write_npz_copy


@pytest.fixture
def offline(closed_port):
    return {"host": "127.0.0.1", "port": closed_port, "timeout": 2.0}


class TestLocalFiles:
    def test_gzipped_idx_in_mnist_order(self, mnist_dir):
        files = sources.local_files(mnist_dir)
        assert [f.name for f in files] == [
            "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    def test_plain_and_dotted_idx_names(self, tmp_path, mnist_arrays):
        write_idx_copy(tmp_path, mnist_arrays, gzipped=False)
        for path in tmp_path.iterdir():
            path.rename(tmp_path / path.name.replace("-idx", ".idx"))
        files = sources.local_files(tmp_path)
        assert files[0].name == "train-images.idx3-ubyte"

    def test_npz_file_or_folder(self, tmp_path, mnist_arrays):
        npz = write_npz_copy(tmp_path / "mnist.npz", mnist_arrays)
        assert sources.local_files(npz) == [npz]
        assert sources.local_files(tmp_path) == [npz]

    def test_incomplete_copy_names_missing_files(self, tmp_path, mnist_dir):
        for path in mnist_dir.iterdir():
            if "labels" not in path.name:
                (tmp_path / path.name).write_bytes(path.read_bytes())
        with pytest.raises(DataError) as error:
            sources.local_files(tmp_path)
        message = str(error.value)
        assert "missing IDX files train-labels-idx1-ubyte, t10k-labels-idx1-ubyte" in message
        assert "--source local --mnist-path DIR" in message

    @pytest.mark.parametrize("name", ["nowhere", "mnist.txt"])
    def test_missing_path_or_wrong_file(self, tmp_path, name):
        (tmp_path / "mnist.txt").write_text("x")
        with pytest.raises(DataError, match=str(tmp_path / name)):
            sources.local_files(tmp_path / name)


class TestReadLocalCopy:
    def test_idx_and_npz_give_the_same_arrays(self, tmp_path, mnist_dir, mnist_arrays):
        from_idx = sources.read_local_copy(mnist_dir)
        from_npz = sources.read_local_copy(write_npz_copy(tmp_path / "m.npz", mnist_arrays))
        assert from_idx.digest() == from_npz.digest()
        assert from_idx.x_train.shape == (300, 28, 28)
        np.testing.assert_array_equal(from_idx.y_test, mnist_arrays[3])

    def test_bad_content_is_reported(self, tmp_path, mnist_arrays):
        arrays = list(mnist_arrays)
        arrays[1] = arrays[1][:-1]
        write_idx_copy(tmp_path, arrays)
        with pytest.raises(DataError, match="300 train images but labels of shape"):
            sources.read_local_copy(tmp_path)


class TestCheckAvailable:
    @pytest.mark.parametrize("source", ["tfds", "keras"])
    def test_offline_fails_fast_with_local_copy_advice(self, tmp_path, offline, source):
        start = time.monotonic()
        with pytest.raises(DataError) as error:
            sources.check_available(source, None, tmp_path, **offline)
        assert time.monotonic() - start < 2
        message = str(error.value)
        assert f"downloads from 127.0.0.1:{offline['port']}, which cannot be reached" in message
        assert "--source local --mnist-path DIR" in message

    def test_reachable_host_passes(self, tmp_path):
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            sources.check_available("keras", None, tmp_path, host="127.0.0.1",
                                    port=server.getsockname()[1], timeout=2)

    def test_a_served_run_does_not_probe_private_addresses(self, tmp_path):
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            server.setblocking(False)
            port = server.getsockname()[1]
            served = TargetPolicy(allowed_roots=(tmp_path,))
            with pytest.raises(DownloadError, match=rf"MNIST download_host: refused 127\.0\.0\.1:{port} "
                                                    r"\(127\.0\.0\.1, a loopback address\)"):
                sources.check_available("keras", None, tmp_path, host="127.0.0.1", port=port,
                                        timeout=2, policy=served)
            with pytest.raises(BlockingIOError):
                server.accept()  # no connection was even opened
            allowed = TargetPolicy(allowed_roots=(tmp_path,), private_hosts=frozenset({f"127.0.0.1:{port}"}))
            sources.check_available("keras", None, tmp_path, host="127.0.0.1", port=port,
                                    timeout=2, policy=allowed)

    def test_local_copy_needs_no_network(self, mnist_dir, tmp_path, offline):
        sources.check_available("local", mnist_dir, tmp_path, **offline)

    def test_local_source_without_path(self, tmp_path, offline):
        with pytest.raises(DataError, match="the local source needs an MNIST path"):
            sources.check_available("local", None, tmp_path, **offline)

    def test_earlier_downloads_need_no_network(self, tmp_path, offline):
        info = tmp_path / "tfds" / "mnist" / "3.0.1" / "dataset_info.json"
        info.parent.mkdir(parents=True)
        info.write_text("{}")
        (tmp_path / "keras").mkdir()
        (tmp_path / "keras" / "mnist.npz").write_bytes(b"")
        sources.check_available("tfds", None, tmp_path, **offline)
        sources.check_available("keras", None, tmp_path, **offline)

    def test_tfds_manual_folder_needs_the_official_gz_files(self, tmp_path, mnist_arrays, offline):
        write_idx_copy(tmp_path / "plain", mnist_arrays, gzipped=False)
        with pytest.raises(DataError, match="train-images-idx3-ubyte.gz, .* are missing"):
            sources.check_available("tfds", tmp_path / "plain", tmp_path, **offline)
        write_idx_copy(tmp_path / "gz", mnist_arrays)
        sources.check_available("tfds", tmp_path / "gz", tmp_path, **offline)


class TestFetch:
    def test_local(self, mnist_dir, tmp_path):
        assert sources.fetch("local", mnist_dir, tmp_path).counts == {"train": 300, "test": 100}

    def test_tfds_rejects_files_that_are_not_the_official_ones(self, mnist_dir, tmp_path):
        with pytest.raises(DataError, match="tfds could not load mnist:3.0.1: .*checksum"):
            sources.fetch_tfds(tmp_path, manual_dir=mnist_dir)

    @pytest.mark.slow
    def test_tfds_prepares_the_real_files_offline(self, real_mnist_dir, tmp_path):
        # The original notebook's tfds.load path, fed the official .gz files instead of the network.
        from_tfds = sources.fetch_tfds(tmp_path, manual_dir=real_mnist_dir)
        from_idx = sources.read_local_copy(real_mnist_dir)
        assert from_tfds.counts == {"train": 60000, "test": 10000}
        assert from_tfds.x_train.shape == (60000, 28, 28)
        # tfds stores the examples in its own order: compare what does not depend on it.
        np.testing.assert_array_equal(np.bincount(from_tfds.y_train), np.bincount(from_idx.y_train))
        assert from_tfds.x_test.sum(dtype=np.int64) == from_idx.x_test.sum(dtype=np.int64)
        assert sources.has_cached_copy("tfds", tmp_path)


class TestLocalCopyDigest:
    def test_same_content_whether_gzipped_or_not(self, tmp_path, mnist_dir, mnist_arrays):
        write_idx_copy(tmp_path / "plain", mnist_arrays, gzipped=False)
        assert sources.local_copy_digest(tmp_path / "plain") == sources.local_copy_digest(mnist_dir)

    def test_one_label_changes_it(self, tmp_path, mnist_dir, mnist_arrays):
        changed = list(mnist_arrays)
        changed[3] = (changed[3] + 1) % 10
        write_idx_copy(tmp_path, changed)
        assert sources.local_copy_digest(tmp_path) != sources.local_copy_digest(mnist_dir)
