"""Test isolation: Prefect gets its own home, no server address and no telemetry; data is tiny."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports prefect or tensorflow: settings are read at import.
_PREFECT_HOME = tempfile.mkdtemp(prefix="ocr-tests-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ["OCR_PIPELINE_LOCAL_SERVER_KEEP"] = "0"  # no server outlives its test's process
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = os.path.join(_PREFECT_HOME, "storage")
os.environ.pop("OCR_PIPELINE_RESULTS", None)
os.environ["OCR_PIPELINE_SCRATCH"] = os.path.join(_PREFECT_HOME, "scratch")
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):  # never a real store
    os.environ.pop(_name, None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (local mode) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session", autouse=True)
def _prefect_homes_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where `tests.prefect_homes` keeps its ready database: a folder every xdist worker sees."""
    from tests import prefect_homes

    base = tmp_path_factory.getbasetemp()
    prefect_homes.SHARED[:] = [base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base]


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """A fresh results root (a local folder) for one test; Prefect's records go in it."""
    return tmp_path / "results"


@pytest.fixture(scope="session")
def s3_server():
    """One S3 API server (moto's server mode) on 127.0.0.1 for the session's storage tests."""
    from tests.s3_server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def s3_root(s3_server, monkeypatch, tmp_path: Path) -> str:
    """A results root in a fresh bucket of the test S3 server (`s3://<bucket>/ocr`), with the
    AWS environment pointing at it and a scratch cache of this test's own."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OCR_PIPELINE_SCRATCH", str(tmp_path / "scratch"))
    return f"s3://{s3_server.bucket()}/ocr"


@pytest.fixture(scope="session")
def captcha_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 generated captchas (seed 7), shared read-only by the session's tests."""
    from ocr_core.captcha.synthetic import generate_captchas

    folder = tmp_path_factory.mktemp("captchas")
    generate_captchas(folder, 40, seed=7)
    return folder


@pytest.fixture
def ingest_folders(tmp_path: Path, captcha_dir: Path) -> tuple[Path, Path]:
    """(incoming, dataset): 4 new generated captchas to ingest into a dataset of 6 others."""
    import shutil

    dataset, incoming = tmp_path / "dataset", tmp_path / "incoming"
    dataset.mkdir()
    incoming.mkdir()
    paths = sorted(captcha_dir.glob("*.png"))
    for path in paths[:6]:
        shutil.copy(path, dataset)
    for path in paths[6:10]:
        shutil.copy(path, incoming)
    return incoming, dataset


@pytest.fixture(scope="session")
def real_captcha_dir() -> Path:
    """The shared real captcha_images_v2 sample; tests using it skip where it is absent."""
    folder = SHARED_DATASETS / "captcha_images_v2"
    if not folder.is_dir():
        pytest.skip(f"real captcha dataset not found at {folder}")
    return folder


@pytest.fixture
def file_server():
    """A scriptable HTTP server on 127.0.0.1 (see tests/fault_server.py)."""
    from tests.fault_server import FaultServer

    with FaultServer() as server:
        yield server


def _zip_folder(folder: Path, top: str = "captcha_images_v2") -> bytes:
    """The PNGs of `folder` as a zip under `top/`, the layout of the published captcha zip."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.glob("*.png")):
            bundle.write(path, f"{top}/{path.name}")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def captcha_zip(captcha_dir: Path) -> bytes:
    """The 40 generated captchas as a zip shaped like captcha_images_v2.zip."""
    return _zip_folder(captcha_dir)


@pytest.fixture(scope="session")
def mnist_arrays() -> list:
    """[x_train, y_train, x_test, y_test]: 300 + 100 synthetic 28x28 digits."""
    from tests.mnist_files import synthetic_mnist

    return synthetic_mnist(train=300, test=100, seed=3)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory, mnist_arrays: list) -> Path:
    """A folder with the four MNIST IDX .gz files of `mnist_arrays`."""
    from tests.mnist_files import write_idx_copy

    folder = tmp_path_factory.mktemp("mnist-idx")
    write_idx_copy(folder, mnist_arrays)
    return folder


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    """The shared real MNIST (four IDX .gz files); tests using it skip where it is absent."""
    folder = SHARED_DATASETS / "mnist"
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {folder}")
    return folder


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once, as when offline."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
