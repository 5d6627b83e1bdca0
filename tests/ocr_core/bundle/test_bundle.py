import json
import shutil
import warnings
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from ocr_core.bundle.folder import captcha_fields, load_bundle, save_bundle
from ocr_core.captcha.inference import expand_inputs, predict_files, score
from ocr_core.captcha.models import get_recipe
from ocr_core.errors import DataError, ModelError


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    recipe = get_recipe("crnn")
    model = recipe.build_model(num_classes=20)
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path_factory.mktemp("models") / "m1"
    save_bundle(path, model, captcha_fields("2345678bcdefgmnpwxy", 32, 128), recipe="crnn",
                training_data_sha256="ab" * 32, step_key="key1", params={"epochs": 1},
                history={"loss": [1.0]}, metrics={"validation": {"val_sequence_accuracy": 0.5}})
    return path


class TestBundle:
    def test_folder_holds_everything_needed(self, bundle_path):
        assert {p.name for p in bundle_path.iterdir()} == {
            "model.keras", "bundle.json", "metrics.json", "params.json", "history.json"}
        info = json.loads((bundle_path / "bundle.json").read_text())
        assert info["blank_index"] == 0
        assert info["input"] == {"height": 32, "width": 128, "channels": 1, "layout": "width-major"}
        assert info["recipe"] == "crnn" and info["vocabulary"] == "2345678bcdefgmnpwxy"
        assert (info["format_version"], info["kind"]) == (2, "captcha")
        assert info["training_data_sha256"] == "ab" * 32 and info["training_step_key"] == "key1"
        assert "training_manifest_sha256" not in info
        assert info["package_version"] and info["code_version"]
        assert info["library_versions"]["keras"] == keras.__version__
        assert info["library_versions"]["tensorflow"] == tf.__version__
        assert info["library_versions"]["numpy"] == np.__version__

    def test_model_file_loads_in_safe_mode_without_the_project(self, bundle_path):
        model = keras.saving.load_model(bundle_path / "model.keras", safe_mode=True)
        assert model.output_shape == (None, 32, 20)
        with zipfile.ZipFile(bundle_path / "model.keras") as archive:
            config = archive.read("config.json").decode()
        # trained with the fused batch norm, saved with Keras's own layer
        assert "FusedBatchNormalization" not in config and "ocr_core" not in config
        assert '"class_name": "BatchNormalization"' in config

    @pytest.mark.parametrize("suffix", ["", "model.keras"])
    def test_load_folder_or_model_file(self, bundle_path, suffix):
        bundle = load_bundle(bundle_path / suffix if suffix else bundle_path)
        assert (bundle.kind, bundle.recipe, bundle.height, bundle.width) == ("captcha", "crnn", 32, 128)
        assert bundle.vocabulary.characters == "2345678bcdefgmnpwxy"
        assert (bundle.training_data_sha256, bundle.training_step_key) == ("ab" * 32, "key1")
        assert bundle.metrics["validation"]["val_sequence_accuracy"] == 0.5
        assert bundle.params == {"epochs": 1}

    def test_missing_and_incomplete_bundles(self, tmp_path):
        with pytest.raises(ModelError, match="no model at"):
            load_bundle(tmp_path / "nothing")
        (tmp_path / "half").mkdir()
        (tmp_path / "half" / "model.keras").write_bytes(b"junk")
        with pytest.raises(ModelError, match="not a model bundle"):
            load_bundle(tmp_path / "half")

    def test_corrupt_model_file(self, bundle_path, tmp_path):
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "bundle.json").write_text((bundle_path / "bundle.json").read_text())
        (broken / "model.keras").write_bytes(b"not a zip")
        with pytest.raises(ModelError, match="cannot load"):
            load_bundle(broken)

    def test_failed_save_leaves_previous_bundle_intact(self, bundle_path, tmp_path, monkeypatch):
        import ocr_core.bundle.folder

        target = tmp_path / "m"
        model = keras.saving.load_model(bundle_path / "model.keras")
        kwargs = dict(recipe="crnn", training_data_sha256="0", params={}, history={})
        save_bundle(target, model, captcha_fields("ab", 32, 128), **kwargs)
        before = (target / "bundle.json").read_text()

        def disk_full(path, value):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(ocr_core.bundle.folder, "write_json", disk_full)
        with pytest.raises(OSError, match="No space"):
            save_bundle(target, model, captcha_fields("xyz", 32, 128), **kwargs)
        assert (target / "bundle.json").read_text() == before
        assert [p.name for p in tmp_path.iterdir()] == ["m"]


class TestVocabularyChecks:
    """A bundle's vocabulary becomes file names: one that could steer a path is refused at load."""

    def crafted(self, bundle_path, tmp_path, vocabulary):
        folder = tmp_path / "crafted"
        shutil.copytree(bundle_path, folder)
        info = json.loads((folder / "bundle.json").read_text())
        (folder / "bundle.json").write_text(json.dumps(info | {"vocabulary": vocabulary}))
        return folder

    def test_dot_dot_slash_is_refused_at_load(self, bundle_path, tmp_path):
        folder = self.crafted(bundle_path, tmp_path, "2345678bcdefgmnp../")
        with pytest.raises(ModelError, match=r"crafted/bundle\.json: vocabulary entry 16 \('\.'\) "
                                             r"is a dot .*refused: predictions become file names"):
            load_bundle(folder)

    @pytest.mark.parametrize(("vocabulary", "problem"), [
        ("ab/c", r"entry 2 \('/'\) is a path separator"),
        ("ab\\c", r"entry 2 \('\\\\'\) is a path separator"),
        ("ab\x00", "entry 2 .* is a control or unprintable character"),
        ("ab\n", "entry 2 .* is a control or unprintable character"),
        ("ab\u202e", "entry 2 .* is a control or unprintable character"),  # right-to-left override
        ("abca", r"entry 3 \('a'\) is a duplicate"),
        (["a", "b", ".."], r"entry 2 \('\.\.'\) is not a single character"),
        (["a", ""], r"entry 1 \(''\) is not a single character"),
        ("", "vocabulary must be a non-empty string"),
        (17, "vocabulary must be a non-empty string"),
    ])
    def test_bad_entries_are_named(self, bundle_path, tmp_path, vocabulary, problem):
        with pytest.raises(ModelError, match=problem):
            load_bundle(self.crafted(bundle_path, tmp_path, vocabulary))

    def test_a_list_of_characters_loads(self, bundle_path, tmp_path):
        bundle = load_bundle(self.crafted(bundle_path, tmp_path, list("2345678bcdefgmnpwxy")))
        assert bundle.vocabulary.characters == "2345678bcdefgmnpwxy"

    def test_such_a_bundle_is_never_saved(self, bundle_path, tmp_path):
        model = keras.saving.load_model(bundle_path / "model.keras")
        with pytest.raises(ModelError, match=r"m/bundle\.json: vocabulary entry 1 \('/'\)"):
            save_bundle(tmp_path / "m", model, captcha_fields("a/b", 32, 128), recipe="crnn",
                        training_data_sha256="0", params={}, history={})
        assert list(tmp_path.iterdir()) == []


class TestInference:
    def test_predictions_for_files_and_folders(self, bundle_path, captcha_dir):
        bundle = load_bundle(bundle_path)
        paths = expand_inputs([captcha_dir])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predictions = predict_files(bundle, paths[:5], batch_size=2)
        # the saved model takes its inputs as the readers pass them, with no warning to print
        assert not [w for w in caught if "structure of `inputs`" in str(w.message)]
        assert [p.path for p in predictions] == [str(p) for p in paths[:5]]
        assert all(0.0 <= p.confidence <= 1.0 for p in predictions)
        assert all(set(p.text) <= set(bundle.vocabulary.characters) for p in predictions)

    def test_score_uses_labels_in_file_names(self):
        from ocr_core.captcha.inference import Prediction

        report = score([Prediction("/d/abcde.png", "abcde", 0.9),
                        Prediction("/d/bbbbb.png", "bbbb", 0.4)])
        assert report.count == 2
        assert report.sequence_accuracy == 0.5
        assert report.character_error_rate == pytest.approx(0.1)
        assert report.misreads == [{"path": "/d/bbbbb.png", "truth": "bbbbb", "prediction": "bbbb",
                                    "confidence": 0.4}]

    def test_missing_input(self, tmp_path):
        with pytest.raises(DataError, match="no such file or folder: .*nope.png"):
            expand_inputs([tmp_path / "nope.png"])

    def test_not_a_png(self, tmp_path):
        fake = tmp_path / "fake.png"
        fake.write_text("hello")
        with pytest.raises(DataError, match="not a PNG file: .*fake.png"):
            expand_inputs([fake])

    def test_truncated_png(self, bundle_path, captcha_dir, tmp_path):
        source = expand_inputs([captcha_dir])[0]
        broken = tmp_path / "broken.png"
        broken.write_bytes(source.read_bytes()[:60])
        with pytest.raises(DataError, match="cannot decode .*broken.png"):
            predict_files(load_bundle(bundle_path), [broken])


def test_recipes_emit_time_major_logits():
    for name, steps in (("crnn", 32), ("keras_example", 50)):
        recipe = get_recipe(name)
        model = recipe.build_model(num_classes=20)
        logits = model(np.zeros((2, recipe.width, recipe.height, 1), "float32"), training=True)
        assert tuple(logits.shape) == (2, steps, 20)
    with pytest.raises(ValueError, match="unknown recipe 'big'"):
        get_recipe("big")


# The fields today's bundles were written with before one format served both kinds (copied from
# the old writers: ocr_core/bundle/folder.py and ocr_core/mnist/models.py at format 1).
FORMAT_1_CAPTCHA = {
    "format": 1, "vocabulary": "2345678bcdefgmnpwxy", "blank_index": 0, "recipe": "crnn",
    "input": {"height": 32, "width": 128, "channels": 1, "layout": "width-major"},
    "training_manifest_sha256": "ab" * 32, "training_step_key": "old-key",
    "package_version": "0.1.0", "code_version": "c" * 16, "created": "2026-11-20T10:00:00+00:00",
}
FORMAT_1_MNIST = {
    "format": 1, "task": "mnist", "recipe": "dense",
    "input": {"height": 28, "width": 28, "channels": 1, "layout": "channels-last", "scale": "0-1"},
    "output": "logits", "classes": [str(digit) for digit in range(10)],
    "training_data_sha256": "cd" * 32, "parameters": 101_770, "package_version": "0.1.0",
    "code_version": "c" * 16, "created": "2026-11-20T10:00:00+00:00",
}


@pytest.fixture(scope="module")
def digits_path(tmp_path_factory):
    from ocr_core.mnist.models import build_model, bundle_fields

    return save_bundle(tmp_path_factory.mktemp("digits") / "dense", build_model("dense"),
                       bundle_fields("dense"), recipe="dense", training_data_sha256="cd" * 32,
                       params={"model": "dense"}, history={})


def with_description(source, folder, description):
    shutil.copytree(source, folder)
    (folder / "bundle.json").write_text(json.dumps(description))
    return folder


class TestOneFormatForBothKinds:
    def test_a_format_1_captcha_bundle_loads(self, bundle_path, tmp_path):
        folder = with_description(bundle_path, tmp_path / "old", FORMAT_1_CAPTCHA)
        bundle = load_bundle(folder, kind="captcha")
        assert (bundle.kind, bundle.info["format_version"]) == ("captcha", 1)
        assert bundle.training_data_sha256 == "ab" * 32
        assert bundle.training_step_key == "old-key"
        assert bundle.vocabulary.characters == "2345678bcdefgmnpwxy"
        assert bundle.info["library_versions"] == {}
        assert bundle.model.output_shape == (None, 32, 20)

    def test_an_mnist_model_folder_loads(self, digits_path, tmp_path):
        folder = with_description(digits_path, tmp_path / "old", FORMAT_1_MNIST)
        bundle = load_bundle(folder, kind="digits")
        assert (bundle.kind, bundle.recipe, bundle.from_logits) == ("digits", "dense", True)
        assert bundle.training_data_sha256 == "cd" * 32 and bundle.training_step_key is None
        assert "task" not in bundle.info

    def test_digits_bundles_have_the_captcha_lineage_fields(self, bundle_path, digits_path):
        captcha = json.loads((bundle_path / "bundle.json").read_text())
        digits = json.loads((digits_path / "bundle.json").read_text())
        assert (digits["format_version"], digits["kind"], digits["output"]) == (2, "digits",
                                                                                 "logits")
        lineage = {"format_version", "kind", "recipe", "input", "training_data_sha256",
                   "parameters", "package_version", "code_version", "library_versions", "created"}
        assert lineage <= set(captcha) and lineage <= set(digits)
        assert {p.name for p in digits_path.iterdir()} == {p.name for p in bundle_path.iterdir()}

    def test_the_digits_model_file_loads_in_safe_mode_without_the_project(self, digits_path):
        model = keras.saving.load_model(digits_path / "model.keras", safe_mode=True)
        assert model.output_shape == (None, 10)

    def test_a_kind_the_caller_cannot_use_is_one_line_naming_folder_and_kind(self, digits_path):
        with pytest.raises(ModelError) as refused:
            load_bundle(digits_path, kind="captcha")
        assert str(refused.value) == (f"{digits_path} holds a digits model; this needs a captcha "
                                      "model")
        with pytest.raises(ModelError, match="holds a digits model; this needs a captcha model"):
            _ = load_bundle(digits_path).vocabulary

    @pytest.mark.parametrize(("content", "problem"), [
        ("{}", r"not a model bundle description \(no format_version\): .*x/bundle\.json$"),
        ("[1, 2]", r"not a model bundle description: .*x/bundle\.json$"),
        ("<html>", r"not a model bundle description: .*x/bundle\.json: Expecting value"),
        (json.dumps({"format_version": 3, "kind": "captcha"}),
         r"x/bundle\.json: bundle format 3 is newer than this ocr-pipeline reads \(2\)"),
        (json.dumps({"format_version": 2, "kind": "audio"}),
         r"x/bundle\.json: unknown model kind 'audio' \(known: captcha, digits\)$"),
        (json.dumps(FORMAT_1_CAPTCHA | {"task": "speech"}), r"unknown model task 'speech'"),
        (json.dumps({k: v for k, v in FORMAT_1_CAPTCHA.items() if k != "vocabulary"}),
         r"x/bundle\.json: a captcha bundle description lacks vocabulary$"),
        (json.dumps(FORMAT_1_MNIST | {"output": "softmax"}), r"output 'softmax' is not one of"),
    ])
    def test_what_is_not_a_bundle_is_one_line_naming_the_file(self, bundle_path, tmp_path,
                                                                content, problem):
        folder = tmp_path / "x"
        shutil.copytree(bundle_path, folder)
        (folder / "bundle.json").write_text(content)
        with pytest.raises(ModelError, match=problem) as refused:
            load_bundle(folder)
        assert "\n" not in str(refused.value)


def test_a_bundle_builds_its_vocabulary_once(bundle_path):
    bundle = load_bundle(bundle_path)
    assert bundle.vocabulary is bundle.vocabulary
