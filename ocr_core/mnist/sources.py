"""Where MNIST comes from: a local copy (IDX files or a keras `mnist.npz`), tfds or keras's file.

The network sources are checked before they are used: offline, tfds retries for minutes before it
gives up, so `check_available` fails within seconds and says how to give a local copy instead.
The host it probes follows the download rules (`ocr_core.guards.targets`): a served run does not probe
private addresses, so its form cannot scan the worker's network.
Downloads land under `cache_dir` (inside the results root), not in `~/tensorflow_datasets` or
`~/.keras`.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Literal

import numpy as np

from ocr_core.errors import DataError
from ocr_core.guards.targets import HopGuard, TargetPolicy
from ocr_core.layout import ResultsLayout
from ocr_core.mnist.data import ARRAY_NAMES, DigitArrays, load_arrays
from ocr_core.mnist.idx import read_idx

logger = logging.getLogger(__name__)

Source = Literal["tfds", "keras", "local"]

DOWNLOAD_HOST = "storage.googleapis.com"  # serves both the tfds and the keras files
DOWNLOAD_PORT = 443
TFDS_NAME = "mnist:3.0.1"
KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPZ_NAME = "mnist.npz"
IDX_NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
LOCAL_COPY_HELP = (
    "Give a local copy: --source local --mnist-path DIR (in Python: source='local', "
    "mnist_path=DIR), where DIR holds the four MNIST IDX files ("
    + ", ".join(f"{name}.gz" for name in IDX_NAMES.values()) + "; gzipped or not) or a keras "
    f"{NPZ_NAME}."
)


def download_cache(results_dir: str | Path) -> Path:
    """Where the tfds and keras sources keep their downloads: inside the results root."""
    return ResultsLayout(Path(results_dir)).data / "mnist-downloads"


def _idx_file(folder: Path, name: str) -> Path | None:
    """The IDX file `name` in `folder`, also as `.gz` or with the dotted spelling some mirrors use."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, f"{name}.gz", dotted, f"{dotted}.gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def local_files(path: str | Path) -> list[Path]:
    """The files of a local MNIST copy: the four IDX files (train images, train labels, test
    images, test labels) or one `.npz`.

    Raises:
        DataError: `path` is missing or holds neither form, naming what is missing.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"MNIST path {path} does not exist. {LOCAL_COPY_HELP}")
    if path.is_file():
        if path.suffix == ".npz":
            return [path]
        raise DataError(f"MNIST path {path} is a file but not an .npz. {LOCAL_COPY_HELP}")
    found = {name: _idx_file(path, IDX_NAMES[name]) for name in ARRAY_NAMES}
    if all(found.values()):
        return [found[name] for name in ARRAY_NAMES]
    if (path / NPZ_NAME).is_file():
        return [path / NPZ_NAME]
    missing = [IDX_NAMES[name] for name, file in found.items() if file is None]
    raise DataError(f"{path} holds no MNIST copy: no {NPZ_NAME} and missing IDX files "
                    f"{', '.join(missing)}. {LOCAL_COPY_HELP}")


def local_copy_digest(path: str | Path) -> str:
    """sha256 over the files of a local copy, gzip files hashed decompressed: re-compressing one
    (gzip stores a timestamp) or unzipping it does not change the digest."""
    digest = hashlib.sha256()
    for role, file in zip(ARRAY_NAMES, local_files(path), strict=False):
        digest.update(role.encode())
        opener = gzip.open if file.suffix == ".gz" else open
        try:
            with opener(file, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except (OSError, EOFError) as error:
            raise DataError(f"cannot read {file}: {error}") from error
    return digest.hexdigest()


def read_local_copy(path: str | Path) -> DigitArrays:
    """Read a local copy found by `local_files` into checked arrays."""
    files = local_files(path)
    if len(files) == 1:
        return load_arrays(files[0])
    return DigitArrays.checked(str(path), *(read_idx(file) for file in files))


def tfds_manual_files(folder: str | Path) -> list[Path]:
    """The official gzipped IDX files tfds reads from a manual folder instead of downloading."""
    folder = Path(folder)
    files = [folder / f"{name}.gz" for name in IDX_NAMES.values()]
    missing = [file.name for file in files if not file.is_file()]
    if missing:
        raise DataError(f"tfds reads the official MNIST files from {folder}, but "
                        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing. "
                        "Or use --source local, which also reads unzipped IDX files and .npz.")
    return files


def has_cached_copy(source: Source, cache_dir: str | Path) -> bool:
    """Whether an earlier run left a usable copy for `source` in `cache_dir` (no network needed)."""
    cache_dir = Path(cache_dir)
    if source == "tfds":
        name, version = TFDS_NAME.split(":")
        return (cache_dir / "tfds" / name / version / "dataset_info.json").is_file()
    if source == "keras":
        return (cache_dir / "keras" / NPZ_NAME).is_file()
    return False


def check_reachable(host: str, port: int, timeout: float, policy: TargetPolicy | None = None) -> None:
    """Open and close a TCP connection to `host:port`, name resolution included, within `timeout` s.

    Raises:
        OSError: no connection (refused, unresolvable, or `TimeoutError` past the deadline).
        DownloadError: `policy` refuses one of the host's addresses (before any connection).
    """
    deadline = time.monotonic() + timeout
    addresses = _resolve(host, port, timeout)
    HopGuard("MNIST download_host", policy or TargetPolicy()).check_addresses(
        host, port, [address[0] for *_, address in addresses])
    error: OSError = OSError(f"no address for {host}")
    for family, kind, protocol, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no connection within {timeout:g} s")
        try:
            with socket.socket(family, kind, protocol) as connection:
                connection.settimeout(remaining)
                connection.connect(address)
                return
        except OSError as failure:
            error = failure
    raise error


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo with a deadline (it has none of its own, and a broken resolver can hang)."""
    outcome: dict[str, object] = {}

    def resolve() -> None:
        try:
            outcome["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            outcome["error"] = error

    worker = threading.Thread(target=resolve, name=f"resolve-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"resolving {host} took over {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["addresses"]  # type: ignore[return-value]


def check_available(
    source: Source,
    mnist_path: str | Path | None,
    cache_dir: str | Path,
    *,
    host: str = DOWNLOAD_HOST,
    port: int = DOWNLOAD_PORT,
    timeout: float = 5.0,
    policy: TargetPolicy | None = None,
) -> None:
    """Fail within about `timeout` seconds when `source` cannot deliver MNIST.

    A local copy (the local source, a tfds manual folder, or an earlier run's download in
    `cache_dir`) needs no network; otherwise `host:port` must accept a connection, and be an
    address `policy` allows (default: a local run's, `TargetPolicy()`).

    Raises:
        DataError: the local copy is incomplete, or the download host cannot be reached; the
            message says how to give a local copy.
        DownloadError: `policy` refuses the host.
    """
    if source == "local":
        if mnist_path is None:
            raise DataError(f"the local source needs an MNIST path. {LOCAL_COPY_HELP}")
        local_files(mnist_path)
        return
    if source == "tfds" and mnist_path is not None:
        tfds_manual_files(mnist_path)
        return
    if has_cached_copy(source, cache_dir):
        return
    try:
        check_reachable(host, port, timeout, policy)
    except OSError as error:
        raise DataError(
            f"MNIST source {source!r} downloads from {host}:{port}, which cannot be reached "
            f"({error or type(error).__name__}). Offline? {LOCAL_COPY_HELP}") from error


def fetch_tfds(cache_dir: str | Path, manual_dir: str | Path | None = None) -> DigitArrays:
    """`tfds.load('mnist', as_supervised=True, with_info=True)` as in the original notebook, into `cache_dir`.

    With `manual_dir` (the four official `.gz` files), tfds prepares from those instead of
    downloading; it still checks their sha256 against its registered checksums.
    """
    import tensorflow_datasets as tfds

    options = {}
    if manual_dir is not None:
        options["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=str(manual_dir))}
    try:
        (train, test), info = tfds.load(
            TFDS_NAME, split=["train", "test"], as_supervised=True, with_info=True,
            shuffle_files=False, data_dir=str(Path(cache_dir) / "tfds"), **options)
    except Exception as error:  # tfds raises many types (download, checksum, IO)
        raise DataError(f"tfds could not load {TFDS_NAME}: {error}") from error
    logger.info("tfds %s: %s", info.full_name,
                {str(name): split.num_examples for name, split in info.splits.items()})
    return DigitArrays.checked(f"tfds {info.full_name}",
                               *_as_arrays(train, info.splits["train"].num_examples),
                               *_as_arrays(test, info.splits["test"].num_examples))


def _as_arrays(dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow_datasets as tfds

    images, labels = next(iter(tfds.as_numpy(dataset.batch(count))))
    return images, labels


def fetch_keras(cache_dir: str | Path) -> DigitArrays:
    """The file `keras.datasets.mnist.load_data()` reads (same URL, same sha256 check), kept in
    `cache_dir/keras` instead of `~/.keras`."""
    import keras

    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp for a missing folder
    try:
        path = keras.utils.get_file(NPZ_NAME, origin=KERAS_MNIST_URL, file_hash=KERAS_MNIST_SHA256,
                                    cache_dir=str(folder), cache_subdir="keras")
    except Exception as error:  # keras wraps URL errors in a bare Exception
        raise DataError(f"keras could not download {KERAS_MNIST_URL}: {error}") from error
    return load_arrays(path)


def fetch(source: Source, mnist_path: str | Path | None, cache_dir: str | Path) -> DigitArrays:
    """MNIST from `source`; call `check_available` first to fail fast when offline."""
    if source == "local":
        if mnist_path is None:
            raise DataError(f"the local source needs an MNIST path. {LOCAL_COPY_HELP}")
        return read_local_copy(mnist_path)
    if source == "tfds":
        return fetch_tfds(cache_dir, mnist_path)
    if source == "keras":
        return fetch_keras(cache_dir)
    raise DataError(f"unknown MNIST source {source!r}; choose tfds, keras or local")
