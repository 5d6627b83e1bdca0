import json
import shutil

import keras
import numpy as np
import pytest

from ocr_core.bundle import load_bundle, save_bundle
from ocr_core.errors import DataError, ModelError
from ocr_core.inference import expand_inputs, predict_files, score
from ocr_core.models import get_recipe


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    recipe = get_recipe("crnn")
    model = recipe.build_model(num_classes=20)
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path_factory.mktemp("models") / "m1"
    save_bundle(path, model, vocabulary="2345678bcdefgmnpwxy", recipe="crnn", height=32,
                width=128, training_manifest_sha256="ab" * 32, params={"epochs": 1},
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
        assert info["training_manifest_sha256"] == "ab" * 32
        assert info["package_version"] and info["code_version"]

    def test_model_file_loads_in_safe_mode_without_the_project(self, bundle_path):
        model = keras.saving.load_model(bundle_path / "model.keras", safe_mode=True)
        assert model.output_shape == (None, 32, 20)

    @pytest.mark.parametrize("suffix", ["", "model.keras"])
    def test_load_folder_or_model_file(self, bundle_path, suffix):
        bundle = load_bundle(bundle_path / suffix if suffix else bundle_path)
        assert (bundle.height, bundle.width) == (32, 128)
        assert bundle.metrics["validation"]["val_sequence_accuracy"] == 0.5

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
        import ocr_core.bundle

        target = tmp_path / "m"
        model = keras.saving.load_model(bundle_path / "model.keras")
        kwargs = dict(vocabulary="ab", recipe="crnn", height=32, width=128,
                      training_manifest_sha256="0", params={}, history={})
        save_bundle(target, model, **kwargs)
        before = (target / "bundle.json").read_text()

        def disk_full(path, value):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(ocr_core.bundle, "write_json", disk_full)
        with pytest.raises(OSError, match="No space"):
            save_bundle(target, model, **kwargs | {"vocabulary": "xyz"})
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
            save_bundle(tmp_path / "m", model, vocabulary="a/b", recipe="crnn", height=32,
                        width=128, training_manifest_sha256="0", params={}, history={})
        assert list(tmp_path.iterdir()) == []


class TestInference:
    def test_predictions_for_files_and_folders(self, bundle_path, captcha_dir):
        bundle = load_bundle(bundle_path)
        paths = expand_inputs([captcha_dir])
        predictions = predict_files(bundle, paths[:5], batch_size=2)
        assert [p.path for p in predictions] == [str(p) for p in paths[:5]]
        assert all(0.0 <= p.confidence <= 1.0 for p in predictions)
        assert all(set(p.text) <= set(bundle.vocabulary.characters) for p in predictions)

    def test_score_uses_labels_in_file_names(self):
        from ocr_core.inference import Prediction

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
