"""Where Prefect keeps a step's record, how, and who may write it: all on the results root.

- `RecordSerializer`: records (`tasks.records`) as JSON. Reading one builds a known record class
  from plain values; nothing is unpickled or imported by a name the file gives.
- `RecordStorage`: a Prefect result storage block on `<root>/prefect-results`, local or on a
  store. It refuses to hand Prefect a result written by any other serializer: a result file
  naming pickle would run code when read, so it reads as absent and the step computes again.
- `RootLockManager`: Prefect's lock manager for `SERIALIZABLE` steps, on the root's own locks
  (`Root.lock`: a file lock locally, a lease on the store), so one machine computes a key while
  the others wait, then read the record it wrote.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from typing import Any, ClassVar

import anyio
from prefect.blocks.core import Block
from prefect.exceptions import ObjectAlreadyExists
from prefect.filesystems import WritableFileSystem
from prefect.locking.protocol import LockManager
from prefect.serializers import Serializer
from pydantic import Field, PrivateAttr

from ocr_core.storage import Root, open_root
from ocr_core.storage.roots import KeyLock
from tasks import digit_records, records
from tasks.records import Output

RECORD_TYPES: dict[str, type[Output]] = {
    cls.__name__: cls for cls in (
        records.Output, records.ImageFolder, records.Manifest, records.Split, records.Datasets,
        records.ModelBundle, records.EvaluationReport, records.Picture, records.RegisteredModel,
        records.PromotionDecision, records.DownloadedFile, digit_records.MnistSource,
        digit_records.DigitData, digit_records.DigitModel, digit_records.DigitEvaluationReport)
}
"""The records a stored result may hold, by name: reading a result builds one of these, nothing else."""

SERIALIZER_TYPE = "ocr-record"
RESULTS_FOLDER = "prefect-results"


def encode(value: Any) -> Any:
    """`value` as JSON values; a record becomes `{"record": <class name>, "fields": {...}}`."""
    if isinstance(value, Output):
        return {"record": type(value).__name__,
                "fields": {item.name: encode(getattr(value, item.name))
                           for item in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a step result must be a record or JSON values, not {type(value).__name__}")


def decode(value: Any) -> Any:
    """The inverse of `encode`: only the classes of `RECORD_TYPES` are built."""
    if isinstance(value, dict) and set(value) == {"record", "fields"}:
        cls = RECORD_TYPES.get(value["record"])
        if cls is None:
            raise ValueError(f"unknown record type {value['record']!r}")
        return cls(**{name: decode(item) for name, item in value["fields"].items()})
    if isinstance(value, dict):
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


class RecordSerializer(Serializer):
    """Step results as JSON (records by class name, from `tasks.records` only)."""

    type: str = Field(default=SERIALIZER_TYPE, frozen=True)

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(encode(obj), sort_keys=True).encode()

    def loads(self, blob: bytes) -> Any:
        return decode(json.loads(blob))


class RecordStorage(WritableFileSystem):
    """Prefect's result storage in `<root>/prefect-results`, for JSON records only."""

    _block_type_name: ClassVar[str] = "OCR Pipeline Records"

    root: str = Field(description="The results root (a path or URL).")
    _opened: Root | None = PrivateAttr(default=None)

    @classmethod
    def on(cls, root: str) -> RecordStorage:
        """The storage of `root`'s records, saved as a block on the Prefect server (Prefect runs
        tasks only with result storage the server knows); saved once per server and process."""
        from prefect.settings import get_current_settings

        return _saved_storage(str(get_current_settings().api.url), root)

    def _root(self) -> Root:
        if self._opened is None:
            self._opened = open_root(self.root)
        return self._opened

    def read_path(self, path: str, **_: Any) -> bytes:
        content = self._root().read_bytes(record_key(path))
        check_serializer(content, path)
        return content

    def write_path(self, path: str, content: bytes, **_: Any) -> str:
        self._root().write_bytes(record_key(path), content)
        return path


@functools.lru_cache(maxsize=64)
def _saved_storage(api_url: str, root: str) -> RecordStorage:
    storage = RecordStorage(root=root)
    save_block(storage, f"records-{hashlib.sha256(root.encode()).hexdigest()[:16]}")
    return storage


def save_block(block: Block, name: str, attempts: int = 3) -> None:
    """Save `block` as `name`, replacing one of that name, when other processes save at once.

    `Block.save` reads the block type and schema, then creates what is missing: a second
    process that created it in between makes the create fail with a conflict. Each conflict
    means one of the two things now exists, so the next attempt reads it.
    """
    for attempt in range(attempts):
        try:
            block.save(name, overwrite=True)
            return
        except ObjectAlreadyExists:
            if attempt == attempts - 1:
                raise


def check_serializer(content: bytes, name: str) -> None:
    """Raise ValueError unless `content` is a result record written by `RecordSerializer`."""
    try:
        kind = json.loads(content)["metadata"]["serializer"]["type"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"result {name} is not a JSON result record") from None
    if kind != SERIALIZER_TYPE:
        raise ValueError(f"result {name} was written with serializer {kind!r}; only "
                         f"{SERIALIZER_TYPE!r} results are read")


def record_key(key: str) -> str:
    """Where the record of step `key` is on its root."""
    return f"{RESULTS_FOLDER}/{key}"


def read_record(root: Root, key: str) -> tuple[dict[str, Any], Output] | None:
    """The stored result of step `key` (Prefect's JSON and the record in it), read without
    waiting for the key's lock; None when there is none, or none this code would read."""
    try:
        content = root.read_bytes(record_key(key))
        check_serializer(content, key)
        raw = json.loads(content)
        record = RecordSerializer().loads(raw["result"].encode())
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (raw, record) if isinstance(record, Output) else None


def rewrite_record(root: Root, key: str, raw: dict[str, Any], record: Output) -> None:
    """Replace the record in step `key`'s stored result, keeping Prefect's metadata."""
    updated = raw | {"result": RecordSerializer().dumps(record).decode()}
    root.write_bytes(record_key(key), json.dumps(updated).encode())


class RootLockManager(LockManager):
    """Prefect's lock manager over a root's own locks (`Root.lock`), one per key."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._held: dict[str, tuple[str, KeyLock]] = {}

    def __reduce__(self) -> tuple[Any, ...]:  # a Dask worker gets the root, not held locks
        return RootLockManager, (self.root,)

    def _lock(self, key: str) -> KeyLock:
        return open_root(self.root).lock(key)

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        from ocr_core.storage.errors import LockTimeout

        if self.is_lock_holder(key, holder):
            return True
        lock = self._lock(key)
        try:
            lock.acquire(acquire_timeout)
        except LockTimeout:
            return False
        self._held[key] = (holder, lock)
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.acquire_lock, key, holder, acquire_timeout,
                                              hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        if not self.is_lock_holder(key, holder):
            raise ValueError(f"no lock held by {holder} for key {key}")
        self._held.pop(key)[1].release()

    def is_locked(self, key: str) -> bool:
        return key in self._held or self._lock(key).is_locked()

    def is_lock_holder(self, key: str, holder: str) -> bool:
        return key in self._held and self._held[key][0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.wait_for_lock, key, timeout)
