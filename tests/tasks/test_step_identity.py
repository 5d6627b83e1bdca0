"""A step's key covers the code its output depends on, and only that, plus the libraries' versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks import caching
from tasks.caching import PROJECT_ROOT, current_step_key, keyed_step, module_files, source_digest
from tasks.captcha import build_datasets, collect_captchas, split_dataset
from tasks.mnist import plot_digits, train_digit_model
from tasks.records import Datasets, DigitData, EvaluationReport, Manifest, ModelBundle, Split
from tasks.report import plot_history, plot_predictions, plot_samples
from tasks.training import evaluate_model, train_model
from tasks.validation import validate_images

ROOT = Path("/results")
DATASETS = Datasets("/r/d", content_digest="d1")
MODEL = ModelBundle("/r/m", content_digest="m1")
CAPTCHA_STEPS = {
    "collect_captchas": (collect_captchas, {"num_samples": 40, "seed": 1, "results_dir": ROOT}),
    "validate_images": (validate_images, {"images": DATASETS, "results_dir": ROOT}),
    "split_dataset": (split_dataset, {"manifest": Manifest("/r/x", content_digest="x"), "seed": 1,
                                      "validation_fraction": 0.1, "test_fraction": 0.1,
                                      "results_dir": ROOT}),
    "build_datasets": (build_datasets, {"split": Split("/r/s", content_digest="s"), "recipe": "crnn",
                                        "results_dir": ROOT}),
    "train_model": (train_model, {"datasets": DATASETS, "recipe": "crnn", "epochs": 1,
                                  "patience": 1, "batch_size": 8, "learning_rate": None,
                                  "augment": False, "seed": 1, "results_dir": ROOT}),
    "evaluate_model": (evaluate_model, {"model": MODEL, "datasets": DATASETS, "split": "test",
                                        "decoder": "greedy", "beam_width": 4, "results_dir": ROOT}),
    "plot_samples": (plot_samples, {"datasets": DATASETS, "results_dir": ROOT}),
    "plot_history": (plot_history, {"model": MODEL, "results_dir": ROOT}),
    "plot_predictions": (plot_predictions, {"evaluation": EvaluationReport("/r/e", content_digest="e"),
                                            "datasets": DATASETS, "results_dir": ROOT}),
}
DIGITS = DigitData("/r/n", content_digest="n1")
MNIST_STEPS = {
    "plot_digits": (plot_digits, {"data": DIGITS, "seed": 1, "results_dir": ROOT}),
    "train_digit_model": (train_digit_model, {
        "data": DIGITS, "model_name": "dense", "epochs": 1, "patience": 1, "batch_size": 8,
        "validation_fraction": 0.1, "seed": 1, "results_dir": ROOT}),
}


def _keys(steps: dict) -> dict[str, str]:
    return {name: step.fn.step_key(parameters) for name, (step, parameters) in steps.items()}


@pytest.fixture
def source_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the project's packages that keys are computed from; tests edit it."""
    for package in caching.PROJECT_PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(caching, "PROJECT_ROOT", tmp_path)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


class TestCodeInTheKey:
    def test_editing_a_task_modules_constant_changes_its_steps_keys(self, source_copy):
        before = _keys(CAPTCHA_STEPS)
        _edit(source_copy / "tasks" / "report.py", "SAMPLE_COUNT = 16", "SAMPLE_COUNT = 9")
        after = _keys(CAPTCHA_STEPS)
        changed = {name for name in before if before[name] != after[name]}
        assert changed == {"plot_samples", "plot_history", "plot_predictions"}

    def test_editing_a_helper_of_a_task_module_changes_its_keys(self, source_copy):
        before = _keys(MNIST_STEPS)
        _edit(source_copy / "tasks" / "mnist.py", "MISCLASSIFIED_SHOWN = 36",
              "MISCLASSIFIED_SHOWN = 20")
        after = _keys(MNIST_STEPS)
        assert all(before[name] != after[name] for name in before)

    def test_editing_mnist_plots_keeps_the_captcha_steps(self, source_copy):
        captcha, mnist = _keys(CAPTCHA_STEPS), _keys(MNIST_STEPS)
        _edit(source_copy / "ocr_core" / "mnist" / "plots.py", "import", "import  ")
        assert _keys(CAPTCHA_STEPS) == captcha
        assert all(_keys(MNIST_STEPS)[name] != key for name, key in mnist.items())

    def test_editing_the_training_library_changes_training_not_data_steps(self, source_copy):
        before = _keys(CAPTCHA_STEPS)
        _edit(source_copy / "ocr_core" / "training.py", "MONITOR =", "MONITOR  =")
        after = _keys(CAPTCHA_STEPS)
        changed = {name for name in before if before[name] != after[name]}
        assert {"train_model", "evaluate_model"} <= changed
        assert not changed & {"collect_captchas", "validate_images", "split_dataset",
                              "build_datasets", "plot_samples"}

    def test_a_module_covers_what_it_imports_inside_functions_too(self):
        files = {str(p.relative_to(PROJECT_ROOT)) for p in module_files("tasks.training")}
        assert {"tasks/training.py", "ocr_core/training.py", "ocr_core/inference.py",
                "ocr_core/bundle.py", "ocr_core/__init__.py"} <= files
        assert not any(name.startswith("ocr_core/mnist/") for name in files)

    def test_source_digests_are_cached_per_file_version(self, source_copy):
        first = source_digest("tasks.report")
        assert source_digest("tasks.report") == first
        _edit(source_copy / "tasks" / "report.py", "SAMPLE_COUNT = 16", "SAMPLE_COUNT = 8")
        assert source_digest("tasks.report") != first


class TestLibrariesInTheKey:
    def test_a_library_upgrade_changes_every_key(self, monkeypatch):
        before = _keys(CAPTCHA_STEPS)
        versions = caching.library_versions()
        assert versions["tensorflow"] and versions["keras"] and versions["pillow"]
        monkeypatch.setattr(caching, "library_versions",
                            lambda: versions | {"tensorflow": "99.0.0"})
        after = _keys(CAPTCHA_STEPS)
        assert all(before[name] != after[name] for name in before)


class TestOneKey:
    def test_the_key_inside_the_step_is_its_cache_key(self):
        seen = []

        @keyed_step(ignore=("threads",))
        def step(size: int, results_dir: Path, threads: int | None = None) -> None:
            seen.append(current_step_key())

        step(3, ROOT, threads=2)
        assert seen == [step.step_key({"size": 3, "results_dir": ROOT})]
        assert step.step_key({"size": 3, "results_dir": ROOT, "threads": 7}) == seen[0]
        assert step.step_key({"size": 4, "results_dir": ROOT}) != seen[0]

    def test_outside_a_step_there_is_no_key(self):
        with pytest.raises(RuntimeError, match="keyed_step"):
            current_step_key()
