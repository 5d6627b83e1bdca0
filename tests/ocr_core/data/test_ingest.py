"""Ingest rules: training's checks, duplicates and name clashes against the dataset, atomic moves."""

import shutil
from pathlib import Path

import pytest
from PIL import Image

from ocr_core.data import ingest
from ocr_core.data.dataset import list_pngs
from ocr_core.errors import ConfigError, DataError


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


class TestPlan:
    def test_new_good_files_are_accepted(self, ingest_folders):
        incoming, dataset = ingest_folders
        plan = ingest.plan_ingest(incoming, dataset)
        assert sorted(plan.accepted) == sorted(names(incoming))
        assert plan.refused == {} and plan.checked == 4 and plan.dataset_images == 6

    def test_training_rules_apply(self, ingest_folders):
        incoming, dataset = ingest_folders
        first = sorted(incoming.glob("*.png"))[0]
        Image.new("RGB", (100, 30)).save(incoming / "44444.png")
        Image.new("RGB", (200, 50), "red").save(incoming / "ABCDE.png")
        shutil.copy(first, incoming / "yyyyy.png")  # same bytes as another incoming file
        refused = ingest.plan_ingest(incoming, dataset).refused
        assert refused["44444.png"] == ["size 100x30, expected 200x50"]
        assert refused["ABCDE.png"][0].startswith("label 'ABCDE' does not match")
        assert refused["yyyyy.png"] == [f"same bytes as {first.name}"]

    def test_duplicates_of_dataset_files_are_refused_under_any_name(self, ingest_folders):
        incoming, dataset = ingest_folders
        existing = sorted(dataset.glob("*.png"))[0]
        shutil.copy(existing, incoming / "wwwww.png")
        plan = ingest.plan_ingest(incoming, dataset)
        assert plan.refused == {
            "wwwww.png": [f"same bytes as {existing.name}, already in the dataset"]}
        assert "wwwww.png" not in plan.accepted

    def test_images_of_the_evaluation_set_are_refused_naming_them(self, ingest_folders):
        from ocr_core.files import sha256_file

        incoming, dataset = ingest_folders
        held = sorted(incoming.glob("*.png"))[0]
        plan = ingest.plan_ingest(incoming, dataset, held_out={sha256_file(held): "abcde.png"})
        assert plan.refused == {held.name: [
            "same bytes as abcde.png in the evaluation set, which no model may train on"]}
        assert held.name not in plan.accepted and len(plan.accepted) == 3

    def test_a_name_clash_is_refused_not_overwritten(self, ingest_folders):
        incoming, dataset = ingest_folders
        existing = sorted(dataset.glob("*.png"))[0]
        other = sorted(incoming.glob("*.png"))[0]
        other.rename(incoming / existing.name)  # other bytes, a label already in the dataset
        before = existing.read_bytes()
        outcome = ingest.carry_out(ingest.plan_ingest(incoming, dataset))
        assert outcome.refused[existing.name][0].startswith("name clash")
        assert existing.read_bytes() == before
        assert (incoming / existing.name).exists()  # a refused file stays where it was

    def test_other_files_are_ignored_and_an_empty_source_plans_nothing(self, ingest_folders, tmp_path):
        incoming, dataset = ingest_folders
        (incoming / "review.jsonl").write_text('{"prediction": "xxxxx"}\n')
        (incoming / "notes").mkdir()
        assert ingest.plan_ingest(incoming, dataset).checked == 4
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "review.jsonl").write_text("")
        plan = ingest.plan_ingest(empty, dataset)
        assert (plan.checked, plan.accepted, plan.refused) == (0, [], {})

    def test_bad_folders(self, ingest_folders, tmp_path):
        incoming, dataset = ingest_folders
        with pytest.raises(DataError, match="not a folder"):
            ingest.plan_ingest(tmp_path / "missing", dataset)
        with pytest.raises(DataError, match="--data-dir is not a folder"):
            ingest.plan_ingest(incoming, tmp_path / "missing")
        with pytest.raises(ConfigError, match="same folder"):
            ingest.plan_ingest(dataset, dataset)


class TestMove:
    def test_accepted_files_move_and_refused_ones_stay(self, ingest_folders):
        incoming, dataset = ingest_folders
        Image.new("RGB", (100, 30)).save(incoming / "44444.png")
        moving = {p.name: p.read_bytes() for p in incoming.glob("*.png") if p.name != "44444.png"}
        outcome = ingest.carry_out(ingest.plan_ingest(incoming, dataset))
        assert sorted(outcome.accepted) == sorted(moving)
        assert names(incoming) == {"44444.png"}
        assert all((dataset / name).read_bytes() == data for name, data in moving.items())
        assert outcome.dataset_images == 10 and len(list_pngs(dataset)) == 10
        assert not [p for p in dataset.iterdir() if p.name.startswith(".")]  # no temporary left

    def test_a_name_that_appears_meanwhile_is_not_overwritten(self, tmp_path):
        source, target = tmp_path / "a", tmp_path / "b"
        source.mkdir()
        target.mkdir()
        (source / "22222.png").write_bytes(b"new")
        (target / "22222.png").write_bytes(b"old")
        with pytest.raises(FileExistsError):
            ingest.move_into(source / "22222.png", target)
        assert (target / "22222.png").read_bytes() == b"old"
        assert (source / "22222.png").read_bytes() == b"new"
        assert names(target) == {"22222.png"}

    def test_a_failed_copy_leaves_nothing_in_the_dataset(self, tmp_path, monkeypatch):
        source, target = tmp_path / "a", tmp_path / "b"
        source.mkdir()
        target.mkdir()
        (source / "22222.png").write_bytes(b"x" * 1000)

        def crash(*args):
            raise OSError("disk full")

        monkeypatch.setattr(ingest.os, "fsync", crash)
        with pytest.raises(OSError, match="disk full"):
            ingest.move_into(source / "22222.png", target)
        assert names(target) == set() and names(source) == {"22222.png"}


class TestEvent:
    def test_resource_id_is_the_resolved_folder(self, tmp_path):
        (tmp_path / "data").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "data")
        expected = f"ocr-pipeline.dataset.{(tmp_path / 'data').resolve()}"
        assert ingest.dataset_resource_id(tmp_path / "link") == expected
        assert ingest.dataset_resource_id(tmp_path / "data") == expected

    def test_payload_counts(self, ingest_folders):
        incoming, dataset = ingest_folders
        Image.new("RGB", (100, 30)).save(incoming / "44444.png")
        outcome = ingest.carry_out(ingest.plan_ingest(incoming, dataset))
        payload = ingest.event_payload(outcome, "/r/report.json")
        assert payload == {"data_dir": str(dataset.resolve()), "accepted": 4, "refused": 1,
                           "dataset_images": 10, "report": "/r/report.json"}
        markdown = ingest.report_markdown(outcome)
        assert "| 44444.png | size 100x30, expected 200x50 |" in markdown
