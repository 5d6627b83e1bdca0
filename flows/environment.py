"""Process set-up shared by the CLI, `serve`, the benchmarks and programmatic use: settings that
must be in place before Prefect and TensorFlow load, and a console without their start-up noise.

Prefect reads its settings once, when it is first imported, so these run at the entry points
before it loads: the CLI (`prepare_environment` with the run's results root), `serve`, and the Dask
worker preload (`dask_setup`). Importing the packages changes nothing: a plain Python program
that runs the flows calls `apply_process_defaults()` first to get the CLI's settings (no
telemetry noise, the library's log lines in Prefect's logs).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator

from ocr_core.errors import OcrPipelineError

_APPLIED: dict[str, str] = {}  # values set here, which a later call may replace (a user's may not)


def apply_process_defaults() -> None:
    """Prefect settings of the product, as environment defaults (a user's values win).

    Where results go is not among them: every cached step keeps its record on the results
    root it is called with (`tasks.caching.step_task_options`).
    """
    defaults = {
        "PREFECT_LOGGING_EXTRA_LOGGERS": "ocr_core",
        # Telemetry from the temporary local server prints "database is locked" tracebacks.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    for name, value in defaults.items():
        if name not in os.environ or os.environ[name] == _APPLIED.get(name):
            os.environ[name] = value
            _APPLIED[name] = value


def prepare_environment(refresh: bool = False, tensorflow: bool = True,
                        wait_for_server: bool = True) -> None:
    """Settings that must be in place before Prefect and TensorFlow load (user's values win),
    and Prefect's temporary server started while they load when no server is configured.

    `tensorflow=False` leaves TensorFlow to the first step that needs it (still quietly): a run
    served from the cache, or a command that never trains or reads images (ingest), never
    loads it. `wait_for_server=False` returns before the temporary server answers: the caller
    calls `flows.local_server.wait_for_local_server()` before its first flow run, after
    loading its flows.

    `refresh` is for scripts written before runs had a `refresh` parameter: it turns Prefect's
    process-wide refresh switch on. Prefer the parameter (`params.refresh`, CLI `--refresh`),
    which also works for runs started from the UI or a deployment.
    """
    from flows.local_server import start_local_server, wait_for_local_server

    apply_process_defaults()
    if refresh:
        os.environ["PREFECT_TASKS_REFRESH_CACHE"] = "true"
    start_local_server()  # starts while the libraries load (flows.local_server)
    logging.getLogger("ocr_core").setLevel(logging.INFO)
    # Prefect must set up logging before TensorFlow loads absl, which claims the root logger.
    import prefect.main  # noqa: F401  (importing it runs Prefect's logging set-up)

    for handler in logging.getLogger().handlers:  # Prefect's console handler
        handler.addFilter(hide_expected_tracebacks)
    if tensorflow:
        import_tensorflow_quietly()
    else:
        quiet_tensorflow_when_first_imported()
    if wait_for_server:
        wait_for_local_server()


def hide_expected_tracebacks(record: logging.LogRecord) -> bool:
    """Drop the traceback of the project's own errors from console logs: the CLI prints them in
    one line, and their text names the problem (Prefect logs every failed task with its stack)."""
    if record.exc_info and isinstance(record.exc_info[1], OcrPipelineError):
        record.exc_info = None
        record.exc_text = None
    return True


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN, absl notices) kept off stderr.

    Those lines are written before TF_CPP_MIN_LOG_LEVEL is read, so only a redirect hides them;
    Python errors raised by the import still surface.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with _stderr_to_devnull():
        import tensorflow  # noqa: F401


def load_tensorflow_while_the_server_starts() -> None:
    """Import TensorFlow now if the local server is still starting: a core idles while it does,
    and a command that trains imports TensorFlow later on its critical path (4-10 s). One whose
    server answers already (a kept one, a configured one) leaves it to the first step that needs
    it, so a run served from the cache does not load it."""
    from flows.local_server import local_server_answers

    if not local_server_answers():
        import_tensorflow_quietly()


def quiet_tensorflow_when_first_imported() -> None:
    """Whatever imports TensorFlow first in this process does so as `import_tensorflow_quietly`
    would (steps import it inside their functions: a cached step never loads it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(
            isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow` with stderr sent away, then steps aside."""

    def find_spec(self, name: str, path: object, target: object = None):  # noqa: ANN201
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module: object) -> None:
                with _stderr_to_devnull():
                    execute(module)

            spec.loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def dask_setup(worker: object) -> None:
    """Dask worker preload (`dask worker --preload flows.environment`, and every local cluster of
    `--dask-workers`): the process defaults (a local cluster's workers inherit the CLI's), and
    the Prefect server must accept the worker's credentials, and TensorFlow loaded once per
    worker, quietly, before the first task."""
    apply_process_defaults()
    check_server_credentials()
    import_tensorflow_quietly()


def check_server_credentials() -> None:
    """Exit when `PREFECT_API_URL`'s server answers 401 to this process's
    `PREFECT_API_AUTH_STRING`: a worker without them would fail every task it is given."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    from flows.command_errors import UNAUTHORIZED, unauthorized_message

    if not get_current_settings().api.url:
        return
    try:
        with get_client(sync_client=True) as client:
            client.api_version()  # an authenticated endpoint (health is not)
    except httpx.HTTPStatusError as error:
        if error.response.status_code == UNAUTHORIZED:
            # SystemExit, not an exception: Dask logs a preload's exceptions and starts anyway.
            raise SystemExit(f"Error: {unauthorized_message(error)}") from None
    except httpx.HTTPError:  # unreachable now: the tasks will say so when they run
        return
