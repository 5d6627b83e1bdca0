"""Prefect's result files are written to a temporary name and renamed: never half a file."""

import asyncio
import os
from pathlib import Path

import prefect.results
import pytest
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

import tasks  # noqa: F401  (importing the tasks makes result storage atomic)
from tasks.storage import AtomicLocalFileSystem


def test_writes_are_whole_and_leave_no_temporary_file(tmp_path):
    storage = AtomicLocalFileSystem(basepath=str(tmp_path))
    storage.write_path("records/key", b"first")
    asyncio.run(storage.awrite_path("records/other", b"second"))
    assert (tmp_path / "records" / "key").read_bytes() == b"first"
    assert storage.read_path("records/other") == b"second"
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["key", "other"]


def test_a_write_that_dies_before_the_rename_keeps_the_old_record(tmp_path, monkeypatch):
    storage = AtomicLocalFileSystem(basepath=str(tmp_path))
    storage.write_path("key", b"old record")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        storage.write_path("key", b"new rec")
    assert (tmp_path / "key").read_bytes() == b"old record"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_prefects_default_result_storage_is_atomic(tmp_path):
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: tmp_path / "prefect-results"}):
        storage = prefect.results.get_default_result_storage()
    assert isinstance(storage, AtomicLocalFileSystem)
    assert Path(storage.basepath) == tmp_path / "prefect-results"
