import pytest

from ocr_core.data import dataset as ds
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
        labels = [r.label for rs in splits.values() for r in rs]
        assert len(labels) == len(set(labels)) == 100

    def test_fractions_hold_within_sampling_noise(self):
        splits = ds.split_records(_records(10_000), validation_fraction=0.1, test_fraction=0.2,
                                  seed=1)
        # binomial standard deviations: sqrt(10000 * 0.1 * 0.9) = 30, sqrt(10000 * 0.2 * 0.8) = 40
        assert abs(len(splits["validation"]) - 1000) < 4 * 30
        assert abs(len(splits["test"]) - 2000) < 4 * 40

    def test_adding_images_never_moves_an_existing_one(self):
        before = ds.split_records(_records(400), validation_fraction=0.1, test_fraction=0.1,
                                  seed=5)
        after = ds.split_records(_records(500), validation_fraction=0.1, test_fraction=0.1,
                                 seed=5)
        for name in ds.SPLITS:
            assert set(before[name]) <= set(after[name])

    def test_an_image_split_follows_its_content_not_its_name_or_position(self):
        record = ds.ImageRecord("/a/abc.png", "abc", "f" * 64)
        moved = ds.ImageRecord("/b/abc.png", "abc", "f" * 64)
        others = _records(200)
        first = ds.split_records([record, *others], validation_fraction=0.2, test_fraction=0.2,
                                 seed=1)
        again = ds.split_records([*others[:50], moved], validation_fraction=0.2,
                                 test_fraction=0.2, seed=1)
        home = next(name for name in ds.SPLITS if record in first[name])
        assert moved in again[home]

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

    def test_split_manifest_round_trip_names_its_rule(self, tmp_path):
        splits = ds.split_records(_records(40), validation_fraction=0.1, test_fraction=0.1, seed=0)
        digest = ds.write_split(tmp_path / "s.json", splits, "0123456789", seed=0)
        read, vocabulary = ds.read_split(tmp_path / "s.json")
        assert read == splits and vocabulary == "0123456789"
        assert len(digest) == 64
        membership = ds.split_membership(tmp_path / "s.json")
        assert membership["rule"] == ds.SPLIT_RULE and "content-hash" in membership["rule"]
        assert membership["test"] == sorted(r.sha256 for r in splits["test"])

    def test_split_changes_count_what_joined_and_what_moved(self):
        before = {"train": ["a", "b"], "validation": ["c"], "test": ["d"]}
        after = {"train": ["a", "b", "e", "f"], "validation": ["c", "g"], "test": ["d"]}
        changes = ds.split_changes(before, after)
        assert {n: c["joined"] for n, c in changes.items()} == {"train": 2, "validation": 1,
                                                                "test": 0}
        assert all(c["moved_in"] == c["left"] == 0 for c in changes.values())
        reshuffled = ds.split_changes(before, {"train": ["a", "d"], "validation": ["c"],
                                               "test": ["b"]})
        assert reshuffled["test"] == {"joined": 0, "moved_in": 1, "left": 1, "images": 1}
