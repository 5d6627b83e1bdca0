"""The STEP policy inside real Prefect runs: hits across flow runs, misses when files vanish."""

import os
from pathlib import Path

import pytest
from prefect import flow

from ocr_core.files import atomic_path
from tasks.caching import cached_task, current_step_key
from tasks.records import Output

pytestmark = pytest.mark.slow
CALLS: list[str] = []


@cached_task()
def write_text(text: str, results_dir: Path) -> Output:
    CALLS.append(text)
    key = current_step_key()
    with atomic_path(results_dir / f"{key}.txt") as tmp:
        tmp.write_text(text)
    return Output(str(results_dir / f"{key}.txt"), step_key=key)


@flow
def write_flow(text: str, results_dir: Path) -> Output:
    return write_text(text, results_dir)


def test_cache_hit_in_a_new_flow_run_and_miss_when_files_are_gone(prefect_server, results_dir):
    CALLS.clear()
    first = write_flow("hello", results_dir)
    second = write_flow("hello", results_dir)
    assert CALLS == ["hello"]
    assert second == first

    write_flow("other", results_dir)
    assert CALLS == ["hello", "other"]

    (results_dir / first.path).unlink()
    third = write_flow("hello", results_dir)
    assert CALLS == ["hello", "other", "hello"]
    assert (results_dir / third.path).read_text() == "hello"


def test_a_changed_output_is_never_served(prefect_server, results_dir):
    CALLS.clear()
    first = write_flow("twelve bytes", results_dir)
    (results_dir / first.path).write_text("tampered!!!!")  # other bytes, the same size
    again = write_flow("twelve bytes", results_dir)
    assert CALLS == ["twelve bytes", "twelve bytes"]
    assert (results_dir / again.path).read_text() == "twelve bytes"


def test_a_record_naming_pickle_is_not_read(prefect_server, results_dir, tmp_path):
    """Whoever can write a record cannot make a later run execute code: it is a miss."""
    import base64
    import json
    import pickle

    CALLS.clear()
    first = write_flow("safe", results_dir)
    record = results_dir / "prefect-results" / first.step_key
    payload = pickle.dumps(Exploit(str(tmp_path / "pwned")))
    stored = json.loads(record.read_text())
    stored["metadata"]["serializer"] = {"type": "pickle", "picklelib": "cloudpickle"}
    stored["result"] = base64.b64encode(payload).decode()
    record.write_text(json.dumps(stored))
    write_flow("safe", results_dir)
    assert CALLS == ["safe", "safe"] and not (tmp_path / "pwned").exists()
    assert json.loads(record.read_text())["metadata"]["serializer"] == {"type": "ocr-record"}


class Exploit:
    """What a pickle payload does when loaded: here, run a shell command that creates a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_truncated_record_is_a_miss_not_a_failure(prefect_server, results_dir):
    """A kill while Prefect writes a record (its storage writes in place) costs a recompute."""
    CALLS.clear()
    first = write_flow("whole", results_dir)
    record = results_dir / "prefect-results" / first.step_key
    record.write_bytes(record.read_bytes()[:40])
    again = write_flow("whole", results_dir)
    assert CALLS == ["whole", "whole"] and again.path == first.path
