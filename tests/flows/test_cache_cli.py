"""`ocr-pipeline cache ls|prune` on a hand-made results root laid out as the steps write it."""

from __future__ import annotations

import base64
import json
import os
import pickle
import time
from pathlib import Path

import filelock
import pytest
from click.testing import CliRunner

from flows.cli import main
from ocr_core.cache.entries import parse_duration, scan
from ocr_core.cache.locks import lock_path
from ocr_core.errors import ConfigError

DAY = 86400
K = {name: f"{index:x}" * 24 for index, name in enumerate(
    ("data", "datasets", "model", "work", "plot", "split", "old_used"), start=1)}


def _record(root: Path, key: str, *paths: Path) -> Path:
    """A Prefect result file as Prefect writes it: JSON metadata and a base64 pickled value."""
    value = {"paths": [str(p) for p in paths], "digest": key}
    path = root / "prefect-results" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "metadata": {"storage_key": str(path), "serializer": {"type": "pickle"}},
        "result": base64.b64encode(pickle.dumps(value)).decode()}))
    return path


def _files(folder: Path, count: int = 2, size: int = 1000) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"{index}.png").write_bytes(b"x" * size)
    return folder


def _age(path: Path, days: float, read_days: float | None = None) -> None:
    now = time.time()
    for item in [path, *path.rglob("*")]:
        os.utime(item, (now - (days if read_days is None else read_days) * DAY, now - days * DAY))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Old keys of every kind, one registered model, one recent split and one old key whose
    record was read yesterday (a cache hit)."""
    root = tmp_path / "results"
    data = _files(root / "data" / "synthetic" / K["data"], count=3)
    datasets = _files(root / "datasets" / K["datasets"])
    model = _files(root / "models" / f"crnn-{K['model']}")
    work = _files(root / "work" / f"train_model-{K['work']}")
    plot = root / "plots" / f"samples-{K['plot']}.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(b"p" * 500)
    used = _files(root / "data" / "extracted" / K["old_used"])
    for name, path in (("data", data), ("datasets", datasets), ("model", model), ("plot", plot)):
        _age(path, 10)
        _age(_record(root, K[name], path), 10)
    _age(work, 10)
    _age(used, 10)
    _age(_record(root, K["old_used"], used), 10, read_days=1)
    version = root / "registry" / "versions" / "v1"
    version.mkdir(parents=True)
    (version / "version.json").write_text(json.dumps({"version": "v1", "source": str(model)}))
    split = root / "manifests" / f"split-{K['split']}.json"
    split.parent.mkdir(parents=True)
    split.write_text("{}")
    _record(root, K["split"], split)
    return root


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "locks" not in p.parts}


def _cli(*args: str):
    return CliRunner().invoke(main, ["cache", *args], catch_exceptions=False)


class TestScan:
    def test_each_key_has_its_step_places_size_and_references(self, root):
        entries = scan(root)
        assert set(entries) == set(K.values())
        assert entries[K["data"]].step == "collect_captchas"
        assert entries[K["model"]].step == "train_model"
        assert entries[K["plot"]].step == "plot_samples"
        assert entries[K["work"]].step == "train_model (resume state)"
        data = entries[K["data"]]
        record = root / "prefect-results" / K["data"]
        assert data.size == 3000 + record.stat().st_size
        assert data.records == {K["data"]} and not data.registry
        assert entries[K["model"]].registry == {"v1"}
        assert not entries[K["work"]].records

    def test_listing_does_not_make_records_look_used(self, root):
        record = root / "prefect-results" / K["data"]
        before = record.stat().st_atime
        scan(root)
        assert record.stat().st_atime == before


class TestLs:
    def test_lists_every_key_with_step_size_age_and_references(self, root):
        result = _cli("ls", "--results-dir", str(root))
        assert result.exit_code == 0, result.output
        lines = {line.split()[0]: line for line in result.output.splitlines()[1:-1]}
        assert set(lines) == set(K.values())
        assert "collect_captchas" in lines[K["data"]] and " kB " in lines[K["data"]]
        assert "10d" in lines[K["data"]] and lines[K["data"]].endswith("record")
        assert lines[K["model"]].endswith("record, registry v1")
        assert lines[K["work"]].endswith("-")
        assert result.output.splitlines()[-1].startswith("7 keys,")

    def test_a_missing_root_is_a_clear_error(self, tmp_path):
        result = _cli("ls", "--results-dir", str(tmp_path / "nowhere"))
        assert result.exit_code == 3
        assert result.output.strip() == f"Error: results root {tmp_path / 'nowhere'} does not exist"


class TestPrune:
    def test_a_dry_run_lists_what_would_go_and_removes_nothing(self, root):
        before = _tree(root)
        result = _cli("prune", "--older-than", "7d", "--results-dir", str(root))
        assert result.exit_code == 0, result.output
        assert _tree(root) == before
        would = {line.split()[2] for line in result.output.splitlines()
                 if line.startswith("would remove")}
        assert would == {K["data"], K["datasets"], K["work"], K["plot"]}
        assert "would go, freeing" in result.output and "--yes" in result.output

    def test_removes_old_unreferenced_keys_and_keeps_registry_recent_and_held_ones(self, root):
        held = filelock.FileLock(lock_path(root, K["work"]), timeout=0)
        lock_path(root, K["work"]).parent.mkdir(parents=True)
        with held:
            result = _cli("prune", "--older-than", "7d", "--yes", "--results-dir", str(root))
        assert result.exit_code == 0, result.output
        left = _tree(root)
        for gone in (f"data/synthetic/{K['data']}", f"datasets/{K['datasets']}",
                     f"plots/samples-{K['plot']}.png", f"prefect-results/{K['data']}"):
            assert gone not in left
        for kept in (f"models/crnn-{K['model']}/0.png", f"prefect-results/{K['model']}",
                     "registry/versions/v1/version.json", f"work/train_model-{K['work']}/0.png",
                     f"manifests/split-{K['split']}.json", f"data/extracted/{K['old_used']}/0.png"):
            assert kept in left
        assert not [name for name in left if ".prune-" in name]
        assert f"keep    {K['work']}  (held by a running step)" in result.output
        assert "removed 3 keys, freed" in result.output

    def test_what_a_kept_keys_record_points_at_stays(self, root):
        # the registered model's (old) record also names the old dataset folder
        _age(_record(root, K["model"], root / "models" / f"crnn-{K['model']}",
                     root / "datasets" / K["datasets"]), 10)
        result = _cli("prune", "--older-than", "7d", "--yes", "--results-dir", str(root))
        assert f"datasets/{K['datasets']}/0.png" in _tree(root)
        assert f"keep    {K['datasets']}  (used by {K['model']})" in result.output

    def test_a_recently_read_record_keeps_what_it_names(self, root):
        result = _cli("prune", "--older-than", "7d", "--yes", "--results-dir", str(root))
        assert f"data/extracted/{K['old_used']}/0.png" in _tree(root)
        assert K["old_used"] not in result.output

    def test_an_interrupted_prunes_leftovers_go(self, root):
        aside = _files(root / "datasets" / f".prune-0123456789ab-{K['datasets']}")
        _cli("prune", "--older-than", "7d", "--yes", "--results-dir", str(root))
        assert not aside.exists()

    @pytest.mark.parametrize("given", ["soon", "7", "d", "-1d", "7 days"])
    def test_a_bad_duration_is_a_clear_error(self, root, given):
        result = _cli("prune", "--older-than", given, "--results-dir", str(root))
        assert result.exit_code == 2
        assert result.output.startswith(f"Error: --older-than {given!r} is not a duration")


def test_durations():
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("7d") == 7 * DAY
    assert parse_duration(" 1.5w ") == 1.5 * 7 * DAY
    with pytest.raises(ConfigError, match="e.g. 7d or 12h"):
        parse_duration("")


class TestOnAStore:
    """The same commands on an S3 root: keys from one listing, ages from the last write."""

    def test_ls_and_prune_keep_what_the_registry_and_kept_records_name(self, s3_root):
        from ocr_core.storage import open_root

        store = open_root(s3_root)
        registered, record_only, loose = "a" * 24, "b" * 24, "c" * 24
        for key in (registered, record_only, loose):
            store.write_bytes(f"models/crnn-{key}/model.keras", b"m" * 100)
        store.write_json(f"prefect-results/{registered}", {"result": f"models/crnn-{registered}"})
        store.write_json("registry/versions/v1/version.json", {"source": f"crnn-{registered}"})
        listed = CliRunner().invoke(main, ["cache", "ls", "--results-dir", s3_root])
        assert listed.exit_code == 0, listed.output
        assert "3 keys, " in listed.output and "registry v1" in listed.output

        pruned = CliRunner().invoke(main, ["cache", "prune", "--older-than", "0s", "--yes",
                                           "--results-dir", s3_root])
        assert pruned.exit_code == 0, pruned.output
        assert store.listdir("models") == [f"crnn-{registered}"]
        assert store.exists(f"prefect-results/{registered}")

    def test_a_key_held_by_a_running_step_stays(self, s3_root):
        from ocr_core.storage import open_root

        store = open_root(s3_root)
        key = "d" * 24
        store.write_bytes(f"datasets/{key}/train.bin", b"t")
        held = store.lock(key)
        assert held.try_acquire()
        try:
            result = CliRunner().invoke(main, ["cache", "prune", "--older-than", "0s", "--yes",
                                               "--results-dir", s3_root])
        finally:
            held.release()
        assert result.exit_code == 0 and "held by a running step" in result.output
        assert store.exists(f"datasets/{key}/train.bin")
