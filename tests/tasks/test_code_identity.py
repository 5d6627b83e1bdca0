"""A step's key covers the code the step runs, and only that: edits in a copy of the source tree
change the keys of the steps that run the edited code, and no others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks import code_identity
from tasks.captcha import build_datasets, collect_captchas, split_dataset
from tasks.code_identity import PROJECT_ROOT, module_files, step_code
from tasks.code_identity import code_identity as identity_of
from tasks.digit_records import DigitData, DigitModel, MnistSource
from tasks.download import download_archive, extract_archive
from tasks.mnist import evaluate_digit_model, load_mnist, plot_digits, train_digit_model
from tasks.records import (
    Datasets,
    DownloadedFile,
    EvaluationReport,
    ImageFolder,
    Manifest,
    ModelBundle,
    Split,
)
from tasks.report import plot_history, plot_predictions, plot_samples
from tasks.training import evaluate_model, train_model
from tasks.validation import validate_images

ROOT = Path("/results")
DATASETS = Datasets("/r/d", content_digest="d1")
DIGITS = DigitData("/r/n", content_digest="n1")

GENERATION = {"collect_captchas", "validate_images"}
DATA_PREPARATION = {"split_dataset", "build_datasets"}
CAPTCHA_TRAINING = {"train_model", "evaluate_model", "plot_history", "plot_predictions"}
DOWNLOAD = {"download_archive", "extract_archive"}
MNIST_DATA = {"load_mnist", "plot_digits"}
MNIST_TRAINING = {"train_digit_model", "evaluate_digit_model"}


def _pipeline_keys() -> dict[str, str]:
    """The key of every cached step, each model-consuming step fed the key of the training
    before it (a model's record digest is its step key), as in a run."""
    keys = {
        "collect_captchas": collect_captchas.fn.step_key(
            {"num_samples": 40, "seed": 1, "results_dir": ROOT}),
        "validate_images": validate_images.fn.step_key(
            {"images": ImageFolder("/r/i", content_digest="i1"), "results_dir": ROOT}),
        "split_dataset": split_dataset.fn.step_key(
            {"manifest": Manifest("/r/x", content_digest="x"), "seed": 1, "validation_fraction": 0.1,
             "test_fraction": 0.1, "results_dir": ROOT}),
        "build_datasets": build_datasets.fn.step_key(
            {"split": Split("/r/s", content_digest="s"), "recipe": "crnn", "results_dir": ROOT}),
        "train_model": train_model.fn.step_key(
            {"datasets": DATASETS, "recipe": "crnn", "epochs": 1, "patience": 1, "batch_size": 8,
             "learning_rate": None, "augment": False, "seed": 1, "results_dir": ROOT}),
        "plot_samples": plot_samples.fn.step_key({"datasets": DATASETS, "results_dir": ROOT}),
        "download_archive": download_archive.fn.step_key(
            {"url": "http://127.0.0.1:1/a.zip", "sha256": "ab" * 32, "results_dir": ROOT}),
        "extract_archive": extract_archive.fn.step_key(
            {"archive": DownloadedFile("/r/a.zip", content_digest="ab" * 32), "results_dir": ROOT}),
        "load_mnist": load_mnist.fn.step_key(
            {"source": MnistSource("/r/m", content_digest="m", source="tfds"), "results_dir": ROOT}),
        "plot_digits": plot_digits.fn.step_key({"data": DIGITS, "seed": 1, "results_dir": ROOT}),
        "train_digit_model": train_digit_model.fn.step_key(
            {"data": DIGITS, "model_name": "dense", "epochs": 1, "patience": 1, "batch_size": 8,
             "validation_fraction": 0.1, "seed": 1, "results_dir": ROOT}),
    }
    model = ModelBundle("/r/model", content_digest=keys["train_model"])
    keys["evaluate_model"] = evaluate_model.fn.step_key(
        {"model": model, "datasets": DATASETS, "split": "test", "decoder": "greedy",
         "beam_width": 4, "results_dir": ROOT})
    keys["plot_history"] = plot_history.fn.step_key({"model": model, "results_dir": ROOT})
    keys["plot_predictions"] = plot_predictions.fn.step_key(
        {"evaluation": EvaluationReport("/r/e", content_digest=keys["evaluate_model"]),
         "datasets": DATASETS, "results_dir": ROOT})
    keys["evaluate_digit_model"] = evaluate_digit_model.fn.step_key(
        {"model": DigitModel("/r/dm", content_digest=keys["train_digit_model"]), "data": DIGITS,
         "batch_size": 8, "results_dir": ROOT})
    return keys


@pytest.fixture
def source_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the project's packages that keys are computed from; tests edit it."""
    for package in code_identity.PROJECT_PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code_identity, "PROJECT_ROOT", tmp_path)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _changed_by(edit) -> set[str]:
    before = _pipeline_keys()
    edit()
    after = _pipeline_keys()
    assert before.keys() == after.keys()
    return {name for name in before if before[name] != after[name]}


class TestEditsRerunOnlyTheStepsThatRunTheCode:
    def test_editing_the_captcha_models_retrains_and_reevaluates_only(self, source_copy):
        changed = _changed_by(lambda: _edit(source_copy / "ocr_core" / "captcha" / "models.py",
                                            "layers.Dropout(0.2)", "layers.Dropout(0.3)"))
        assert changed == CAPTCHA_TRAINING

    def test_editing_an_input_size_also_preprocesses_again(self, source_copy):
        changed = _changed_by(lambda: _edit(source_copy / "ocr_core" / "captcha" / "input_sizes.py",
                                            "height=32", "height=48"))
        assert changed == {"build_datasets"} | CAPTCHA_TRAINING

    def test_editing_the_downloader_downloads_again_only(self, source_copy):
        changed = _changed_by(lambda: _edit(source_copy / "ocr_core" / "data" / "download.py",
                                            "import", "import  "))
        assert changed == {"download_archive"}

    def test_editing_the_mnist_models_retrains_mnist_only(self, source_copy):
        changed = _changed_by(lambda: _edit(source_copy / "ocr_core" / "mnist" / "models.py",
                                            "import", "import  "))
        assert changed == MNIST_TRAINING

    def test_editing_the_mnist_loader_reloads_and_keeps_training_keyed_on_the_arrays(
            self, source_copy):
        # the arrays' content digest keys the training: unchanged arrays retrain nothing
        changed = _changed_by(lambda: _edit(source_copy / "ocr_core" / "mnist" / "sources.py",
                                            "import", "import  "))
        assert changed == {"load_mnist"}

    def test_editing_the_captcha_renderer_regenerates(self, source_copy):
        # collect_captchas only collects what render_captcha_shard drew: it declares that code
        changed = _changed_by(lambda: _edit(source_copy / "ocr_core" / "captcha" / "synthetic.py",
                                            "import", "import  "))
        assert "collect_captchas" in changed
        assert not changed & (DATA_PREPARATION | CAPTCHA_TRAINING | DOWNLOAD | MNIST_DATA
                              | MNIST_TRAINING)

    def test_editing_a_task_module_changes_the_keys_of_its_steps(self, source_copy):
        changed = _changed_by(lambda: _edit(source_copy / "tasks" / "report.py",
                                            "SAMPLE_COUNT = 16", "SAMPLE_COUNT = 9"))
        assert changed == {"plot_samples", "plot_history", "plot_predictions"}

    def test_editing_the_key_code_changes_every_key(self, source_copy):
        changed = _changed_by(lambda: _edit(source_copy / "tasks" / "code_identity.py",
                                            "import", "import  "))
        assert changed == set(_pipeline_keys())


class TestLibrariesInTheKey:
    def _upgrade(self, monkeypatch, library: str) -> None:
        versions = code_identity.library_versions()
        monkeypatch.setattr(code_identity, "library_versions",
                            lambda: versions | {library: "99.0.0"})

    def test_the_versions_are_installed_ones(self):
        versions = code_identity.library_versions()
        assert all(versions[name] for name in ("tensorflow", "keras", "pillow",
                                               "tensorflow-datasets", "matplotlib"))

    def test_a_tfds_upgrade_reloads_mnist_only(self, monkeypatch):
        assert _changed_by(lambda: self._upgrade(monkeypatch, "tensorflow-datasets")) == {
            "load_mnist"}

    def test_a_tensorflow_upgrade_changes_the_steps_that_import_it(self, monkeypatch):
        changed = _changed_by(lambda: self._upgrade(monkeypatch, "tensorflow"))
        assert CAPTCHA_TRAINING | MNIST_TRAINING | {"build_datasets", "load_mnist"} <= changed
        assert not changed & {"split_dataset", "validate_images", "download_archive"}

    def test_a_pillow_upgrade_regenerates_and_revalidates(self, monkeypatch):
        assert GENERATION <= _changed_by(lambda: self._upgrade(monkeypatch, "pillow"))

    def test_only_the_libraries_a_step_imports_are_in_its_key(self):
        assert identity_of(split_dataset.fn)["libraries"] == {}
        assert set(identity_of(load_mnist.fn)["libraries"]) >= {"tensorflow-datasets", "numpy"}


class TestTheWalk:
    def test_a_module_covers_what_it_imports_inside_functions_too(self):
        files = {str(p.relative_to(PROJECT_ROOT)) for p in module_files("tasks.training")}
        assert {"tasks/training.py", "ocr_core/captcha/training.py", "ocr_core/captcha/inference.py",
                "ocr_core/bundle/folder.py", "ocr_core/__init__.py"} <= files
        assert not any(name.startswith("ocr_core/mnist/") for name in files)

    def test_imports_for_type_checking_only_are_not_followed(self):
        files = {str(p.relative_to(PROJECT_ROOT)) for p in module_files("ocr_core.captcha.training")}
        assert "ocr_core/captcha/models.py" not in files

    def test_a_module_import_used_by_another_task_is_not_followed(self):
        # tasks/mnist.py imports tasks.links (-> ocr_core.config -> ocr_core.data.download) for
        # publish_comparison only
        files = {str(p.relative_to(PROJECT_ROOT)) for p in step_code(train_digit_model.fn)[0]}
        assert "tasks/mnist.py" in files and "ocr_core/mnist/models.py" in files
        assert not {"tasks/links.py", "ocr_core/config/__init__.py", "ocr_core/data/download.py"} & files

    def test_the_helpers_a_step_calls_bring_their_imports(self):
        # collect_captchas -> generated_key
        files = {str(p.relative_to(PROJECT_ROOT)) for p in step_code(collect_captchas.fn)[0]}
        assert "ocr_core/layout.py" in files

    def test_a_function_the_source_does_not_show_takes_its_whole_module(self, tmp_path,
                                                                        monkeypatch):
        package = tmp_path / "tasks"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "made.py").write_text(
            "from ocr_core.captcha.models import get_recipe\n\n\ndef factory():\n"
            "    def step():\n        return 1\n    return step\n")
        shutil.copytree(PROJECT_ROOT / "ocr_core", tmp_path / "ocr_core")
        monkeypatch.setattr(code_identity, "PROJECT_ROOT", tmp_path)

        def step() -> None: ...

        step.__module__, step.__qualname__ = "tasks.made", "factory.<locals>.step"
        files = {str(p.relative_to(tmp_path)) for p in step_code(step)[0]}
        assert {"tasks/made.py", "ocr_core/captcha/models.py"} <= files

    def test_digests_are_cached_per_file_version(self, source_copy):
        first = identity_of(plot_samples.fn)["code"]
        assert identity_of(plot_samples.fn)["code"] == first
        _edit(source_copy / "tasks" / "report.py", "SAMPLE_COUNT = 16", "SAMPLE_COUNT = 8")
        assert identity_of(plot_samples.fn)["code"] != first


class TestParsing:
    def test_a_parse_another_threads_parse_disturbed_is_run_again(self, tmp_path, monkeypatch):
        """CPython 3.11 can fail a parse while another thread parses (python/cpython#106905)."""
        import ast

        from tasks import source_reading

        module = tmp_path / "m.py"
        module.write_text("import json\n")
        parse, calls = ast.parse, []

        def disturbed_once(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise SystemError("AST constructor recursion depth mismatch (before=57, after=76)")
            return parse(*args, **kwargs)

        monkeypatch.setattr(ast, "parse", disturbed_once)
        tree = source_reading._parse(module, 1, 2)
        assert isinstance(tree.body[0], ast.Import) and len(calls) == 2

    def test_other_system_errors_are_not_hidden(self, tmp_path, monkeypatch):
        import ast

        from tasks import source_reading

        module = tmp_path / "m.py"
        module.write_text("x = 1\n")

        def broken(*args, **kwargs):
            raise SystemError("something else")

        monkeypatch.setattr(ast, "parse", broken)
        with pytest.raises(SystemError, match="something else"):
            source_reading._parse(module, 3, 4)
