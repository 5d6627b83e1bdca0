"""`ocr_core.export`: every format reads what `predict` reads, and a failed export leaves nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ocr_core.errors import ConfigError, ModelError
from tests.bundles import dense_digit_reader, small_crnn_reader

READER = Path(__file__).with_name("read_saved_model.py")


@pytest.fixture(scope="module")
def captcha_bundle(tmp_path_factory) -> Path:
    return small_crnn_reader(tmp_path_factory.mktemp("bundle") / "crnn")


@pytest.fixture(scope="module")
def images(captcha_dir: Path) -> list[Path]:
    return sorted(captcha_dir.glob("*.png"))[:16]


def read_in_plain_tensorflow(export: Path, images: list[Path], tmp_path: Path) -> dict:
    """What the export's serving_default returns, in a fresh Python that cannot import the
    project or Keras."""
    out = tmp_path / "read.json"
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-I", str(READER), str(export), str(out), *map(str, images)],
                   check=True, env=environment, timeout=300)
    return json.loads(out.read_text())


def greedy_numpy(logits: np.ndarray, vocabulary: str, blank: int) -> list[str]:
    """docs/export.md's decoding of a network's logits: best class per step, merge repeats,
    drop the blank."""
    texts = []
    for best in logits.argmax(axis=-1):
        merged = [c for i, c in enumerate(best) if i == 0 or c != best[i - 1]]
        texts.append("".join(vocabulary[c - 1] for c in merged if c != blank))
    return texts


@pytest.mark.slow
def test_saved_model_reads_captchas_like_predict_without_the_project(
        captcha_bundle, images, tmp_path):
    from ocr_core.bundle.folder import load_bundle
    from ocr_core.captcha.inference import predict_files
    from ocr_core.export import export_bundle

    export = export_bundle(captcha_bundle, "saved_model", tmp_path / "export")
    assert (export / "saved_model.pb").is_file()
    read = read_in_plain_tensorflow(export, images, tmp_path)
    predictions = predict_files(load_bundle(captcha_bundle), images)
    assert read["keras_importable"] is False
    assert len({p.text for p in predictions}) > 1  # the model tells images apart
    assert read["text"] == [p.text for p in predictions]
    np.testing.assert_allclose(read["confidence"], [p.confidence for p in predictions],
                               rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_saved_model_reads_digits_with_their_probabilities(tmp_path):
    from PIL import Image

    from ocr_core.bundle.folder import load_bundle
    from ocr_core.export import export_bundle
    from ocr_core.mnist.evaluation import probabilities

    bundle = dense_digit_reader(tmp_path / "dense")
    pixels = np.random.default_rng(3).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    paths = []
    for index, image in enumerate(pixels):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(image).save(paths[-1])
    export = export_bundle(bundle, "saved_model", tmp_path / "export")
    read = read_in_plain_tensorflow(export, paths, tmp_path)
    expected = probabilities(load_bundle(bundle).model, pixels, from_logits=True)
    np.testing.assert_allclose(read["probabilities"], expected, rtol=1e-4, atol=1e-6)
    assert read["digit"] == [str(d) for d in expected.argmax(axis=1)]
    np.testing.assert_allclose(read["confidence"], expected.max(axis=1), rtol=1e-4)


def model_inputs(images: list[Path], height: int, width: int) -> np.ndarray:
    """(batch, width, height, 1) inputs as predict prepares them (plain TensorFlow ops)."""
    from ocr_core.captcha.inference import image_batches

    return next(iter(image_batches(images, height, width, len(images)))).numpy()


@pytest.mark.slow
def test_onnx_runtime_reads_like_predict_with_the_vocabulary_in_the_metadata(
        captcha_bundle, images, tmp_path):
    import onnxruntime

    from ocr_core.bundle.folder import load_bundle
    from ocr_core.captcha.inference import predict_files
    from ocr_core.export import export_bundle

    path = export_bundle(captcha_bundle, "onnx", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["ocr_pipeline"])
    assert [o.name for o in session.get_outputs()] == ["logits"]
    inputs = model_inputs(images, metadata["input"]["height"], metadata["input"]["width"])
    logits = session.run(["logits"], {"image": inputs})[0]
    texts = greedy_numpy(logits, metadata["vocabulary"], metadata["blank_index"])
    assert texts == [p.text for p in predict_files(load_bundle(captcha_bundle), images)]


@pytest.mark.slow
def test_litert_reads_like_predict_with_its_fixed_batch(captcha_bundle, images, tmp_path):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    from ocr_core.bundle.folder import load_bundle
    from ocr_core.captcha.inference import predict_files
    from ocr_core.export import export_bundle

    path = export_bundle(captcha_bundle, "litert", tmp_path / "model.tflite", batch_size=4)
    model = schema.Model.GetRootAs(path.read_bytes())
    entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
               for i in range(model.MetadataLength())}
    metadata = json.loads(model.Buffers(entries["ocr_pipeline"]).DataAsNumpy().tobytes())
    assert metadata["batch_size"] == 4 and metadata["output"] == "logits"
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    inputs = model_inputs(images, metadata["input"]["height"], metadata["input"]["width"])
    texts = []
    for start in range(0, len(images), 4):
        interpreter.set_tensor(source["index"], inputs[start:start + 4])
        interpreter.invoke()
        texts += greedy_numpy(interpreter.get_tensor(target["index"]), metadata["vocabulary"],
                              metadata["blank_index"])
    assert texts == [p.text for p in predict_files(load_bundle(captcha_bundle), images)]


def test_an_unknown_format_is_refused_before_anything_is_written(captcha_bundle, tmp_path):
    from ocr_core.export import export_bundle

    with pytest.raises(ConfigError, match="unknown export format 'torchscript'; choose from "
                                          "saved_model, onnx, litert"):
        export_bundle(captcha_bundle, "torchscript", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_converter_names_what_to_install(captcha_bundle, tmp_path, monkeypatch):
    from ocr_core import export

    monkeypatch.setitem(export.CONVERTERS, "onnx", ("tf2onnx", "a_converter_not_installed"))
    with pytest.raises(ConfigError, match=r"the onnx export needs a_converter_not_installed, "
                                          r"which are not installed: pip install "
                                          r"'ocr-pipeline\[export\]'"):
        export.export_bundle(captcha_bundle, "onnx", tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_broken_bundle_leaves_nothing_half_written(captcha_bundle, tmp_path):
    import shutil

    from ocr_core.export import export_bundle

    broken = tmp_path / "broken"
    shutil.copytree(captcha_bundle, broken)
    (broken / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot load .*broken/model.keras"):
        export_bundle(broken, "saved_model", tmp_path / "out" / "export")
    assert [p.name for p in tmp_path.iterdir()] == ["broken"]
    with pytest.raises(ModelError, match="not a model bundle"):
        export_bundle(tmp_path, "onnx", tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match="already exists"):
        export_bundle(captcha_bundle, "onnx", broken)
    with pytest.raises(ConfigError, match=r"must end in \.tflite"):
        export_bundle(captcha_bundle, "litert", tmp_path / "model.lite")


@pytest.mark.slow
def test_the_export_command_writes_one_file_or_says_what_is_wrong(captcha_bundle, tmp_path):
    from click.testing import CliRunner

    from flows.cli import main

    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(main, ["export", "--model", str(captcha_bundle), "--format",
                                       "onnx", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    result = CliRunner().invoke(main, ["export", "--model", str(tmp_path), str(tmp_path / "s")])
    assert result.exit_code == 4
    assert result.output.strip().splitlines() == [
        f"Error: not a model bundle (needs model.keras and bundle.json): {tmp_path}"]
