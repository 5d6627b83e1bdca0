"""Roots by URL: the same reads, writes, conditions, stamps and copies on a folder and on S3."""

import json
import os
from pathlib import Path

import pytest
from s3fs import S3FileSystem

from ocr_core.errors import ConfigError, DataError
from ocr_core.storage import LocalRoot, StoreRoot, local_copies, local_copy, open_root, root_url
from ocr_core.storage.errors import StorageConflict, StorageError
from ocr_core.storage.scratch import trim


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return open_root(tmp_path / "root")
    return open_root(request.getfixturevalue("s3_root"))


class TestLocations:
    def test_paths_become_absolute_and_urls_canonical(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert root_url("results") == str(tmp_path / "results")
        assert root_url(f"file://{tmp_path}/r") == str(tmp_path / "r")
        assert root_url("s3://bucket/prefix/") == "s3://bucket/prefix"
        assert isinstance(open_root("results"), LocalRoot)
        assert isinstance(open_root("s3://bucket/prefix"), StoreRoot)

    @pytest.mark.parametrize("url, message", [
        ("ftp://host/x", "unknown storage scheme 'ftp'"), ("s3://", "names no bucket"),
        ("gs:///", "names no bucket")])
    def test_a_bad_url_is_a_one_line_error(self, url, message):
        with pytest.raises(ConfigError, match=message):
            root_url(url)

    def test_a_root_pickles_as_its_url(self):
        import pickle

        assert pickle.loads(pickle.dumps(open_root("s3://bucket/p"))) == open_root("s3://bucket/p")


class TestFiles:
    def test_write_read_list_remove(self, root):
        root.write_json("a/b.json", {"x": 1})
        root.write_bytes("a/c/d.bin", b"12345")
        assert root.read_json("a/b.json") == {"x": 1}
        assert root.listdir("a") == ["b.json", "c"]
        assert {name: size for name, (size, _) in root.files("a").items()} == {
            "b.json": len(json.dumps({"x": 1}, indent=2)) + 1, "c/d.bin": 5}
        root.remove("a/c")
        assert root.listdir("a") == ["b.json"] and not root.exists("a/c/d.bin")
        with pytest.raises(FileNotFoundError):
            root.read_bytes("a/c/d.bin")

    def test_create_only_keeps_the_first_writer(self, root):
        root.write_bytes("pointer.json", b"first", create_only=True)
        with pytest.raises(FileExistsError):
            root.write_bytes("pointer.json", b"second", create_only=True)
        assert root.read_bytes("pointer.json") == b"first"

    def test_a_conditional_write_loses_after_another_writer(self, root):
        root.write_bytes("champion.json", b"v1")
        _, version = root.read_versioned("champion.json")
        root.write_bytes("champion.json", b"v2", if_version=version)
        with pytest.raises(StorageConflict):
            root.write_bytes("champion.json", b"v3", if_version=version)  # v2 won
        assert root.read_bytes("champion.json") == b"v2"

    def test_a_stamp_changes_when_bytes_do(self, root):
        root.write_bytes("m/model.keras", b"weights")
        root.write_bytes("m/bundle.json", b"{}")
        stamp = root.stamp("m")
        assert root.stamp("m") == stamp and root.stamp("missing") is None
        root.write_bytes("m/model.keras", b"weigh")  # truncated
        assert root.stamp("m") != stamp


class TestCopies:
    def test_push_then_pull_on_a_fresh_machine_gives_the_same_files(self, root, tmp_path,
                                                                   monkeypatch):
        folder = root.local / "models" / "m"
        folder.mkdir(parents=True)
        (folder / "model.keras").write_bytes(b"w" * 1000)
        (folder / "bundle.json").write_text("{}")
        stamp = root.push("models/m")
        assert stamp == root.stamp("models/m")
        monkeypatch.setenv("OCR_PIPELINE_SCRATCH", str(tmp_path / "other-machine"))
        fresh = open_root(root.url)
        pulled = fresh.pull("models/m")
        assert (pulled / "model.keras").read_bytes() == b"w" * 1000
        assert fresh.pull("models/m") == pulled  # unchanged: not fetched again

    def test_a_changed_key_is_pulled_again(self, s3_root):
        root = open_root(s3_root)
        root.write_bytes("k/a.txt", b"one")
        assert (root.pull("k") / "a.txt").read_bytes() == b"one"
        root.write_bytes("k/a.txt", b"two")
        assert (root.pull("k") / "a.txt").read_bytes() == b"two"

    def test_markers_are_pushed_last(self, s3_root, monkeypatch):
        root = open_root(s3_root)
        folder = root.local / "models" / "m"
        folder.mkdir(parents=True)
        for name in ("a.txt", "bundle.json", "z.txt"):
            (folder / name).write_text(name)
        sent = []  # the files of each upload call, in call order (a call's files go at once)
        put = root.fs.put
        monkeypatch.setattr(root.fs, "put", lambda local, remote, **kw: (
            sent.append(sorted(Path(name).name for name in remote)), put(local, remote, **kw)))
        root.push("models/m")
        assert sent == [["a.txt", "z.txt"], ["bundle.json"]]  # a lister sees bundle.json last
        assert sorted(root.files("models/m")) == ["a.txt", "bundle.json", "z.txt"]

    def test_local_copy_of_a_store_file_and_folder(self, s3_root):
        root = open_root(s3_root)
        root.write_bytes("images/a.png", b"png")
        assert local_copy(f"{s3_root}/images").joinpath("a.png").read_bytes() == b"png"
        assert local_copy(f"{s3_root}/images/a.png").read_bytes() == b"png"
        with pytest.raises(DataError, match=f"no such file or folder: {s3_root}/nothing"):
            local_copy(f"{s3_root}/nothing")

    def test_local_copies_of_store_files_in_one_batch(self, s3_root, tmp_path, monkeypatch):
        root = open_root(s3_root)
        for name in ("a.png", "b.png", "c.png"):
            root.write_bytes(f"in/{name}", name.encode())
        local = tmp_path / "here.png"
        local.write_bytes(b"local")
        wanted = [f"{s3_root}/in/c.png", str(local), f"{s3_root}/in/a.png"]
        fetched = []  # the files of each download call
        fs = open_root(f"{s3_root}/in").fs  # s3fs caches one client: this is the one used
        get = fs.get
        monkeypatch.setattr(fs, "get", lambda remote, local, **kw: (
            fetched.append(sorted(Path(name).name for name in remote)), get(remote, local, **kw)))
        copies = local_copies(wanted)
        assert [path.read_bytes() for path in copies] == [b"c.png", b"local", b"a.png"]
        assert copies[1] == local and fetched == [["a.png", "c.png"]]  # one call, for both
        root.write_bytes("in/a.png", b"changed")
        assert [p.read_bytes() for p in local_copies(wanted)] == [b"c.png", b"local", b"changed"]
        assert fetched[1:] == [["a.png"]]  # only the changed one again
        assert not [p for p in copies[0].parent.iterdir() if p.name.startswith(".tmp-")]
        with pytest.raises(DataError, match=f"no such file: {s3_root}/in/gone.png"):
            local_copies([f"{s3_root}/in/gone.png"])

    def test_the_scratch_cache_evicts_the_least_recently_used_copy(self, s3_root):
        root = open_root(s3_root)
        for name in ("old", "new"):
            root.write_bytes(f"{name}/f.bin", b"x" * 1000)
            root.pull(name)
            os.utime(root.local / name)  # make the order certain
        stamps = sorted((Path(os.environ["OCR_PIPELINE_SCRATCH"]) / "stamps").rglob("*.json"))
        os.utime(next(p for p in stamps if p.name.startswith("old")), (1, 1))
        assert trim(limit=1500) == 1000
        assert not (root.local / "old").exists() and (root.local / "new" / "f.bin").exists()

    def test_a_pinned_copy_is_not_evicted(self, s3_root):
        root = open_root(s3_root)
        root.write_bytes("k/f.bin", b"x" * 1000)
        root.pull("k")
        with root.pinned(["k"]):
            assert trim(limit=0) == 0
        assert trim(limit=0) == 1000


class TestStoreErrors:
    def test_no_bucket_names_it(self, s3_root):
        with pytest.raises(StorageError, match="no such bucket for s3://nobucket-here/x"):
            open_root("s3://nobucket-here/x").read_bytes("a")

    def test_a_listing_names_the_missing_bucket(self, s3_root):
        with pytest.raises(StorageError, match="no such bucket for s3://nobucket-here/x"):
            open_root("s3://nobucket-here/x").files()
        with pytest.raises(StorageError, match="no such bucket for s3://nobucket-here/x"):
            local_copy("s3://nobucket-here/x")

    def test_no_credentials_says_which_variables(self, s3_root, monkeypatch, tmp_path):
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws either
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        S3FileSystem.clear_instance_cache()  # a client made earlier holds the credentials
        try:
            with pytest.raises(StorageError, match="no credentials for .*AWS_ACCESS_KEY_ID"):
                open_root(s3_root + "-fresh").read_bytes("a")
        finally:
            S3FileSystem.clear_instance_cache()  # later tests' clients get the credentials again
