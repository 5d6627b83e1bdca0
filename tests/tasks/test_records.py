import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from tasks.caching import content_token, step_key
from tasks.record_store import RecordSerializer, RecordStorage
from tasks.records import Datasets, ImageFolder, ModelBundle, is_key


class TestRecords:
    def test_json_round_trip_builds_the_same_record(self):
        record = ModelBundle("models/crnn-k", step_key="k", stamps={"models/crnn-k": "s"},
                             validation={"val_loss": 1.5}, recipe="crnn")
        serializer = RecordSerializer()
        blob = serializer.dumps(record)
        assert json.loads(blob)["record"] == "ModelBundle"
        assert serializer.loads(blob) == record

    def test_reading_builds_only_known_records(self):
        blob = json.dumps({"record": "Popen", "fields": {"args": ["true"]}}).encode()
        with pytest.raises(ValueError, match="unknown record type 'Popen'"):
            RecordSerializer().loads(blob)

    def test_a_result_of_another_serializer_is_refused_before_it_is_read(self, tmp_path):
        storage = RecordStorage(root=str(tmp_path))
        pickled = {"metadata": {"serializer": {"type": "pickle"}}, "result": "gASV"}
        (tmp_path / "prefect-results").mkdir()
        (tmp_path / "prefect-results" / "k").write_text(json.dumps(pickled))
        with pytest.raises(ValueError, match="serializer 'pickle'"):
            storage.read_path("k")

    def test_outputs_are_what_the_step_wrote_and_locations_all_it_names(self):
        record = Datasets("datasets/k", step_key="k", split_manifest="manifests/split-s.json",
                          images_root="/data/captchas")
        assert record.outputs() == ["datasets/k"]
        assert record.locations() == ["datasets/k", "manifests/split-s.json", "/data/captchas"]

    def test_identity_is_the_content_digest_else_key_and_stamps(self):
        assert ImageFolder("a", content_digest="d").identity == "d"
        plain = ModelBundle("models/m", step_key="k")
        stamped = ModelBundle("models/m", step_key="k", stamps={"models/m": "s1"})
        restamped = ModelBundle("models/m", step_key="k", stamps={"models/m": "s2"})
        assert plain.identity == "k"
        assert len({plain.identity, stamped.identity, restamped.identity}) == 3

    def test_relocated_moves_every_location_under_an_old_folder_and_nothing_else(self):
        record = Datasets("datasets/k", content_digest="k", split_manifest="manifests/split-k.json",
                          images_root="/data/captchas", vocabulary="/data/captchas")
        moved = record.relocated({"/data/captchas": "/copy"})
        assert moved == Datasets("datasets/k", content_digest="k",
                                 split_manifest="manifests/split-k.json", images_root="/copy",
                                 vocabulary="/data/captchas")
        assert record.relocated({"/data/capt": "/x"}) == record  # a prefix of a name is no folder

    def test_keys_are_relative_and_paths_or_urls_are_not(self):
        assert is_key("models/crnn-k") and not is_key("/abs/path") and not is_key("s3://b/k")
        assert not is_key("")


def train(epochs: int, seed: int) -> None:
    """A stand-in step."""


def evaluate(epochs: int, seed: int) -> None:
    """Another stand-in step."""


class TestContentKeys:
    def test_records_are_keyed_by_digest_not_path(self, tmp_path):
        here = ImageFolder(str(tmp_path / "a"), content_digest="same", count=1)
        there = ImageFolder(str(tmp_path / "b"), content_digest="same", count=1)
        assert content_token(here) == content_token(there)
        assert step_key(train, images=here) == step_key(train, images=there)

    def test_any_input_change_changes_the_key(self):
        base = step_key(train, epochs=2, seed=1)
        assert base != step_key(train, epochs=3, seed=1)
        assert base != step_key(evaluate, epochs=2, seed=1)
        assert base == step_key(train, seed=1, epochs=2)

    def test_paths_and_models_are_tokenised(self):
        class Params(BaseModel):
            seed: int = 1

        assert content_token({"p": Path("/r"), "m": Params()}) == {"p": "/r", "m": {"seed": 1}}

    def test_objects_without_content_are_refused(self):
        with pytest.raises(TypeError, match="cannot build a cache key from a object"):
            content_token(object())


def test_processes_that_save_a_new_block_type_at_once_all_succeed(prefect_server):
    """A served deployment starts runs at once; each saves its records' block. Prefect's save reads
    the block type, then creates it: all but one creator used to fail with ObjectAlreadyExists."""
    import contextvars
    import threading
    import uuid

    from prefect.blocks.core import Block

    from tasks.record_store import save_block

    class Fresh(Block):  # a block type the server has never seen
        _block_type_name = f"Race {uuid.uuid4().hex[:8]}"
        root: str

    barrier, failures = threading.Barrier(8), []

    def save(i: int) -> None:
        barrier.wait()
        try:
            save_block(Fresh(root=f"r{i}"), f"b{i}")
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            failures.append(error)

    # Each thread in this test's Prefect settings (the session's server), as Prefect's task threads
    # are: a new thread would otherwise read the process's settings, which another test may set.
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(save, i))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(Fresh.load(f"b{i}").root for i in range(8)) == [f"r{i}" for i in range(8)]
