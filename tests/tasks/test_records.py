import pickle
from pathlib import Path

import pytest
from pydantic import BaseModel

from tasks.caching import content_token, step_key
from tasks.records import Datasets, ImageFolder, ModelBundle


class TestRecords:
    def test_round_trip(self, tmp_path):
        record = ImageFolder(str(tmp_path), content_digest="d1", count=3, root=str(tmp_path))
        assert pickle.loads(pickle.dumps(record)) == record

    def test_a_record_whose_files_are_gone_names_them(self, tmp_path):
        folder = tmp_path / "images"
        folder.mkdir()
        record = ImageFolder(str(folder), content_digest="d1", count=3)
        assert record.missing_files() == []
        folder.rmdir()
        assert record.missing_files() == [str(folder)]
        assert pickle.loads(pickle.dumps(record)) == record  # reading it is not deciding it

    def test_bundle_record_needs_its_model_file(self, tmp_path):
        (tmp_path / "bundle.json").write_text("{}")
        assert str(tmp_path / "model.keras") in ModelBundle(str(tmp_path), content_digest="k").missing_files()

    def test_datasets_record_needs_its_split_manifest(self, tmp_path):
        for name in ("train", "validation", "test"):
            (tmp_path / name).mkdir()
        (tmp_path / "datasets.json").write_text("{}")
        split = tmp_path / "split.json"
        split.write_text("{}")
        record = Datasets(str(tmp_path), content_digest="d", split_manifest=str(split))
        assert record.missing_files() == []
        split.unlink()
        assert record.missing_files() == [str(split)]

    def test_relocated_moves_every_path_under_an_old_root_and_nothing_else(self):
        record = Datasets("/old/root/datasets/k", content_digest="k", root="/old/root",
                          split_manifest="/old/root/manifests/split-k.json",
                          images_root="/data/captchas", vocabulary="/old/root")
        moved = record.relocated({"/old/root": "/big/disk/root", "/data/captchas": "/copy"})
        assert moved == Datasets("/big/disk/root/datasets/k", content_digest="k", root="/big/disk/root",
                                 split_manifest="/big/disk/root/manifests/split-k.json",
                                 images_root="/copy", vocabulary="/big/disk/root")
        assert record.relocated({"/old/ro": "/x"}) == record  # a prefix of a name is no root

    def test_records_pickled_before_roots_existed_still_read(self):
        record = pickle.loads(pickle.dumps(ImageFolder("/a", content_digest="d")).replace(b"root", b"rxxx"))
        assert record.path == "/a" and record.root == ""


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
