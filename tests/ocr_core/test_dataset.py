import pytest

from ocr_core import dataset as ds
from ocr_core.errors import ConfigError, DataError


def _records(n):
    return [ds.ImageRecord(f"/x/{i:05d}.png", f"{i:05d}", f"{i:064x}") for i in range(n)]


class TestIndex:
    def test_labels_are_file_names(self, captcha_dir):
        records = ds.index_images(ds.list_pngs(captcha_dir))
        assert len(records) == 40
        assert all(r.label == r.path.rsplit("/", 1)[1].removesuffix(".png") for r in records)
        assert all(len(r.sha256) == 64 for r in records)

    def test_hidden_and_non_png_files_are_ignored(self, tmp_path, captcha_dir):
        first = ds.list_pngs(captcha_dir)[0]
        (tmp_path / first.name).write_bytes(first.read_bytes())
        (tmp_path / ".hidden.png").write_bytes(first.read_bytes())
        (tmp_path / "notes.txt").write_text("x")
        assert [p.name for p in ds.list_pngs(tmp_path)] == [first.name]

    def test_empty_folder_is_an_error_naming_it(self, tmp_path):
        with pytest.raises(DataError, match=str(tmp_path)):
            ds.list_pngs(tmp_path)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(DataError, match="not a folder"):
            ds.list_pngs(tmp_path / "nope")

    def test_vocabulary_is_sorted_distinct_characters(self):
        assert ds.build_vocabulary(["b2a", "ab"]) == "2ab"

    def test_manifest_round_trip_and_location_free_digest(self, tmp_path, captcha_dir):
        records = ds.index_images(ds.list_pngs(captcha_dir))
        digest = ds.write_manifest(tmp_path / "m.json", records)
        read, vocabulary = ds.read_manifest(tmp_path / "m.json")
        assert read == records
        assert vocabulary == ds.build_vocabulary([r.label for r in records])
        moved = [ds.ImageRecord("/elsewhere/" + r.label + ".png", r.label, r.sha256) for r in records]
        assert ds.records_digest(moved) == digest


class TestSplit:
    def test_no_overlap_and_everything_used(self):
        splits = ds.split_records(_records(100), validation_fraction=0.1, test_fraction=0.2, seed=1)
        sizes = {name: len(rs) for name, rs in splits.items()}
        assert sizes == {"train": 70, "validation": 10, "test": 20}
        labels = [r.label for rs in splits.values() for r in rs]
        assert len(labels) == len(set(labels)) == 100

    def test_reproducible_and_order_independent(self):
        records = _records(50)
        first = ds.split_records(records, validation_fraction=0.1, test_fraction=0.1, seed=3)
        again = ds.split_records(records[::-1], validation_fraction=0.1, test_fraction=0.1, seed=3)
        other = ds.split_records(records, validation_fraction=0.1, test_fraction=0.1, seed=4)
        assert first == again
        assert first["test"] != other["test"]

    def test_too_few_images_for_a_split(self):
        with pytest.raises(ConfigError, match="cannot be split"):
            ds.split_records(_records(3), validation_fraction=0.1, test_fraction=0.1, seed=0)

    def test_split_manifest_round_trip(self, tmp_path):
        splits = ds.split_records(_records(20), validation_fraction=0.1, test_fraction=0.1, seed=0)
        digest = ds.write_split(tmp_path / "s.json", splits, "0123456789", seed=0)
        read, vocabulary = ds.read_split(tmp_path / "s.json")
        assert read == splits and vocabulary == "0123456789"
        assert len(digest) == 64
