import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocr_core import files
from ocr_core.errors import ConfigError, ModelError, RegistryError
from ocr_core.registry import Registry, bundle_digest, version_number

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def make_bundle(folder: Path, content: str) -> Path:
    """A bundle folder as the registry sees it; the model file is placeholder bytes."""
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(f"model {content}".encode())
    files.write_json(folder / "bundle.json", {
        "format": 1, "vocabulary": "abc", "blank_index": 0, "recipe": "crnn",
        "input": {"height": 32, "width": 128, "channels": 1, "layout": "width-major"},
        "training_manifest_sha256": "d" * 64, "package_version": "0.1.0", "code_version": "c" * 16,
    })
    files.write_json(folder / "metrics.json", {"test": {"sequence_accuracy": 0.5}})
    files.write_json(folder / "params.json", {"seed": 1})
    return folder


def register(registry: Registry, bundle: Path, seed: int = 1):
    return registry.register(bundle, training_data={"source": "synthetic", "images": 40,
                                                    "seed": seed},
                             params={"seed": seed})


class TestRegister:
    def test_versions_are_numbered_copies_of_the_bundles(self, tmp_path):
        registry = Registry.of(tmp_path)
        first = register(registry, make_bundle(tmp_path / "a", "a"), seed=1)
        second = register(registry, make_bundle(tmp_path / "b", "b"), seed=2)
        assert [first.name, second.name] == ["v1", "v2"]
        assert (second.path / "model.keras").read_bytes() == b"model b"
        assert second.info["training_data"]["seed"] == 2
        assert second.info["bundle"]["recipe"] == "crnn"
        # a format 1 bundle is recorded in today's field names
        assert second.info["bundle"]["kind"] == "captcha"
        assert second.info["bundle"]["training_data_sha256"] == "d" * 64
        assert second.info["metrics"]["test"]["sequence_accuracy"] == 0.5
        assert second.digest == bundle_digest(tmp_path / "b")

    def test_the_registry_keeps_its_copy_when_the_cache_is_deleted(self, tmp_path):
        registry = Registry.of(tmp_path)
        bundle = make_bundle(tmp_path / "a", "a")
        version = register(registry, bundle)
        files.remove_path(bundle)
        assert (version.path / "model.keras").read_bytes() == b"model a"

    def test_the_same_bundle_is_registered_once(self, tmp_path):
        registry = Registry.of(tmp_path)
        bundle = make_bundle(tmp_path / "a", "a")
        assert register(registry, bundle).name == register(registry, bundle / "model.keras").name
        assert [v.name for v in registry.versions()] == ["v1"]

    def test_a_digits_bundle_is_refused(self, tmp_path):
        folder = make_bundle(tmp_path / "mnist", "digits")
        files.write_json(folder / "bundle.json", {
            "format": 1, "task": "mnist", "recipe": "dense", "input": {"height": 28, "width": 28},
            "output": "logits", "classes": list("0123456789"), "training_data_sha256": "d" * 64})
        with pytest.raises(ModelError, match=f"^{re.escape(str(folder))} holds a digits model; "
                                             "this needs a captcha model$"):
            register(Registry.of(tmp_path), folder)
        assert not (tmp_path / "registry" / "versions").exists()

    def test_a_folder_without_a_bundle_is_refused(self, tmp_path):
        (tmp_path / "empty").mkdir()
        with pytest.raises(ModelError, match="not a model bundle"):
            register(Registry.of(tmp_path), tmp_path / "empty")

    def test_versions_list_in_number_order_and_ignore_stray_folders(self, tmp_path):
        registry = Registry.of(tmp_path)
        for index in range(11):
            register(registry, make_bundle(tmp_path / f"b{index}", str(index)))
        ((tmp_path / "registry" / "versions") / ".tmp-version-x").mkdir()
        ((tmp_path / "registry" / "versions") / "notes").mkdir()
        assert [v.number for v in registry.versions()] == list(range(1, 12))

    def test_lookup_by_name_number_or_champion(self, tmp_path):
        registry = Registry.of(tmp_path)
        register(registry, make_bundle(tmp_path / "a", "a"))
        assert registry.version("v1").name == registry.version("1").name == "v1"
        with pytest.raises(RegistryError, match=r"no version v2 .*versions: v1"):
            registry.version("v2")
        with pytest.raises(RegistryError, match="not a model version"):
            registry.version("latest")
        with pytest.raises(RegistryError, match="no champion"):
            registry.version("champion")

    def test_version_numbers(self):
        assert version_number("v12") == version_number("12") == version_number(12) == 12
        with pytest.raises(RegistryError):
            version_number("v0")

    @pytest.mark.slow
    def test_a_registered_version_is_a_loadable_bundle(self, tmp_path):
        import keras

        from ocr_core.bundle.folder import captcha_fields, load_bundle, save_bundle

        inputs = keras.Input((16, 8, 1))
        outputs = keras.layers.Dense(4)(keras.layers.Reshape((16, 8))(inputs))
        bundle = save_bundle(tmp_path / "bundle", keras.Model(inputs, outputs),
                             captcha_fields("abc", 8, 16), recipe="crnn",
                             training_data_sha256="0" * 64, params={}, history={})
        version = register(Registry.of(tmp_path), bundle)
        loaded = load_bundle(version.path)
        assert loaded.vocabulary.characters == "abc"
        assert loaded.model.output_shape == (None, 16, 4)


class TestIntegrity:
    def test_a_cache_side_edit_does_not_change_the_registered_version(self, tmp_path):
        registry = Registry.of(tmp_path)
        bundle = make_bundle(tmp_path / "a", "a")
        version = register(registry, bundle)
        with open(bundle / "model.keras", "ab") as cache_file:  # edit in place, as a link would share
            cache_file.write(b" edited")
        assert (version.path / "model.keras").read_bytes() == b"model a"
        assert registry.verified(version) == version

    def test_every_file_is_recorded_and_an_edit_is_refused_naming_the_file(self, tmp_path):
        registry = Registry.of(tmp_path)
        version = register(registry, make_bundle(tmp_path / "a", "a"))
        assert set(version.info["files"]) == {"model.keras", "bundle.json", "metrics.json",
                                              "params.json"}
        (version.path / "params.json").write_text('{"seed": 2}')
        with pytest.raises(RegistryError, match=r"v1 changed since registration: .*params\.json"):
            registry.verified(version)

    def test_a_missing_file_is_refused(self, tmp_path):
        registry = Registry.of(tmp_path)
        version = register(registry, make_bundle(tmp_path / "a", "a"))
        (version.path / "model.keras").unlink()
        with pytest.raises(RegistryError, match=r"lost a file: .*model\.keras"):
            registry.verified(version)

    def test_a_version_without_file_digests_is_checked_by_its_bundle_digest(self, tmp_path):
        registry = Registry.of(tmp_path)
        version = register(registry, make_bundle(tmp_path / "a", "a"))
        info = dict(version.info)
        del info["files"]
        files.write_json(version.path / "version.json", info)
        old = registry.version("v1")
        assert registry.verified(old) == old
        (old.path / "model.keras").write_bytes(b"tampered")
        with pytest.raises(RegistryError, match="model.keras or .*bundle.json differs"):
            registry.verified(old)


class TestChampion:
    def test_no_champion_before_the_first_promotion(self, tmp_path):
        assert Registry.of(tmp_path).champion() is None

    def test_pointer_names_the_promoted_version(self, tmp_path):
        registry = Registry.of(tmp_path)
        version = register(registry, make_bundle(tmp_path / "a", "a"))
        registry.set_champion(version, "first model")
        assert registry.champion().name == "v1"
        pointer = json.loads(((tmp_path / "registry") / "champion.json").read_text())
        assert pointer["version"] == "v1" and pointer["reason"] == "first model"

    def test_a_failed_pointer_update_leaves_the_old_champion(self, tmp_path, monkeypatch):
        registry = Registry.of(tmp_path)
        first = register(registry, make_bundle(tmp_path / "a", "a"))
        second = register(registry, make_bundle(tmp_path / "b", "b"))
        registry.set_champion(first, "first model")

        def crash(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(files.os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            registry.set_champion(second, "better")
        monkeypatch.undo()
        assert registry.champion().name == "v1"
        assert sorted(p.name for p in (tmp_path / "registry").iterdir() if p.is_file()) == [
            "champion.json"]


class TestEvaluationSet:
    def test_first_run_records_the_set_and_later_runs_must_match(self, tmp_path):
        registry = Registry.of(tmp_path)
        recorded = registry.reserve_evaluation_set("a" * 64, 500, {"generated with seed": 2024})
        assert registry.evaluation_set() == recorded
        assert registry.reserve_evaluation_set("a" * 64, 500, {"generated with seed": 2024}) == recorded
        with pytest.raises(ConfigError, match=r"500 images \(generated with seed 2024.*200 images"):
            registry.reserve_evaluation_set("b" * 64, 200, {"generated with seed": 7})
        assert registry.evaluation_set()["digest"] == "a" * 64


    def test_the_images_are_kept_for_ingest_also_for_a_set_recorded_without_them(self,
                                                                                 tmp_path):
        registry = Registry.of(tmp_path)
        registry.reserve_evaluation_set("a" * 64, 2, {"generated with seed": 2024})
        assert registry.evaluation_images() == {}
        registry.reserve_evaluation_set("a" * 64, 2, {"generated with seed": 2024},
                                        images={"f" * 64: "abc.png", "e" * 64: "xyz.png"})
        assert registry.evaluation_images() == {"e" * 64: "xyz.png", "f" * 64: "abc.png"}

    def test_uses_count_the_decisions_that_scored_on_the_set(self, tmp_path):
        registry = Registry.of(tmp_path)
        scored = {"challenger_scores": {"count": 2}, "evaluation_set": {"digest": "a" * 64}}
        registry.record_decision(scored)
        registry.record_decision(scored)
        registry.record_decision({"challenger_scores": None, "evaluation_set": {"digest": "a" * 64}})
        registry.record_decision(scored | {"evaluation_set": {"digest": "b" * 64}})
        assert registry.evaluation_set_uses("a" * 64) == 2


class TestDecisions:
    def test_decisions_are_logged_in_order(self, tmp_path):
        registry = Registry.of(tmp_path)
        for index in range(3):
            registry.record_decision({"promoted": index == 0, "reason": f"r{index}"})
        assert [d["reason"] for d in registry.decisions()] == ["r0", "r1", "r2"]
        assert all("decided" in d for d in registry.decisions())


class TestLock:
    def test_a_second_holder_times_out_with_a_clear_error(self, tmp_path):
        holder = Registry.of(tmp_path)
        waiter = Registry.of(tmp_path, lock_timeout=0.2)
        with holder.lock(), pytest.raises(RegistryError, match="stayed locked"):
            with waiter.lock():
                pass
        with waiter.lock():  # free again
            pass

    def test_threads_sharing_one_instance_take_turns(self, tmp_path):
        import threading

        registry = Registry.of(tmp_path, lock_timeout=0.2)
        errors = []

        def other_thread():
            try:
                with registry.lock():
                    pass
            except RegistryError as error:
                errors.append(error)

        with registry.lock():
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join()
        assert len(errors) == 1
        other_thread()
        assert len(errors) == 1  # free again

    def test_the_lock_is_reentrant_for_its_holder(self, tmp_path):
        registry = Registry.of(tmp_path, lock_timeout=0.5)
        version = register(registry, make_bundle(tmp_path / "a", "a"))
        with registry.lock(), registry.lock():
            registry.set_champion(version, "nested")
        assert registry.champion().name == "v1"

    @pytest.mark.parametrize("where", ["folder", "store"])
    def test_two_processes_register_and_promote_without_losing_updates(self, tmp_path, where,
                                                                        request):
        results = str(tmp_path) if where == "folder" else request.getfixturevalue("s3_root")
        per_process = 4 if where == "store" else 6
        for writer in ("a", "b"):
            for index in range(per_process):
                make_bundle(tmp_path / "bundles" / f"{writer}{index}", f"{writer}{index}")
        script = textwrap.dedent("""
            import sys, time
            from pathlib import Path
            from ocr_core.registry import Registry

            root, results, writer, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
            while not (root / "go").exists():
                time.sleep(0.01)
            registry = Registry.of(results)
            for index in range(count):
                version = registry.register(root / "bundles" / f"{writer}{index}",
                                            training_data={"writer": writer}, params={})
                with registry.lock():
                    before = registry.champion()
                    registry.set_champion(version, writer, replacing=before)
                    registry.record_decision({"challenger": version.name,
                                              "champion_before": before and before.name})
        """)
        processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), results,
                                       writer, str(per_process)], cwd=PROJECT_ROOT,
                                      stderr=subprocess.PIPE, text=True)
                     for writer in ("a", "b")]
        (tmp_path / "go").touch()
        for process in processes:
            _, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors

        registry = Registry.of(results)
        versions = registry.versions()
        assert [v.number for v in versions] == list(range(1, 2 * per_process + 1))
        expected = {bundle_digest(p) for p in (tmp_path / "bundles").iterdir()}
        assert {v.digest for v in versions} == expected
        decisions = registry.decisions()
        assert len(decisions) == 2 * per_process
        # Each decision saw the champion the previous one set: no update was lost.
        for previous, current in zip(decisions, decisions[1:], strict=False):
            assert current["champion_before"] == previous["challenger"]
        assert registry.champion().name == decisions[-1]["challenger"]
        if where == "store":
            return
        leftovers = [p for p in (tmp_path / "registry").rglob(".tmp-*")]
        assert leftovers == [] and os.listdir((tmp_path / "registry") / "decisions")
