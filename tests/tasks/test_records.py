import pickle
from pathlib import Path

import pytest
from pydantic import BaseModel

from tasks.caching import content_token, step_key
from tasks.records import Datasets, ImageFolder, MissingOutputs, ModelBundle


class TestRecords:
    def test_round_trip_while_files_exist(self, tmp_path):
        record = ImageFolder(str(tmp_path), digest="d1", count=3)
        assert pickle.loads(pickle.dumps(record)) == record

    def test_loading_a_record_whose_files_are_gone_fails(self, tmp_path):
        folder = tmp_path / "images"
        folder.mkdir()
        data = pickle.dumps(ImageFolder(str(folder), digest="d1", count=3))
        folder.rmdir()
        with pytest.raises(MissingOutputs, match="images"):
            pickle.loads(data)

    def test_bundle_record_needs_its_model_file(self, tmp_path):
        (tmp_path / "bundle.json").write_text("{}")
        data = pickle.dumps(ModelBundle(str(tmp_path), digest="k"))
        with pytest.raises(MissingOutputs, match="model.keras"):
            pickle.loads(data)

    def test_datasets_record_needs_its_split_manifest(self, tmp_path):
        for name in ("train", "validation", "test"):
            (tmp_path / name).mkdir()
        (tmp_path / "datasets.json").write_text("{}")
        split = tmp_path / "split.json"
        split.write_text("{}")
        data = pickle.dumps(Datasets(str(tmp_path), digest="d", split_manifest=str(split)))
        pickle.loads(data)
        split.unlink()
        with pytest.raises(MissingOutputs, match="split.json"):
            pickle.loads(data)


def train(epochs: int, seed: int) -> None:
    """A stand-in step."""


def evaluate(epochs: int, seed: int) -> None:
    """Another stand-in step."""


class TestContentKeys:
    def test_records_are_keyed_by_digest_not_path(self, tmp_path):
        here = ImageFolder(str(tmp_path / "a"), digest="same", count=1)
        there = ImageFolder(str(tmp_path / "b"), digest="same", count=1)
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
