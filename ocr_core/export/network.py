"""The network alone, as ONNX or LiteRT (TFLite), with what decoding needs in the file's metadata.

Both files hold the Keras model as it is (`model.export`): input `image`, float32 in [0, 1],
shaped as the bundle says (captcha: (batch, width, height, 1), width-major; digits: (batch, 28,
28, 1)); output the model's raw output (captcha: CTC logits (batch, time, classes), class 0 the
blank; digits: logits or probabilities, as `output` says). The metadata entry `ocr_pipeline`
(JSON, `network_metadata`) names the kind, the vocabulary or classes, the blank index, the input
and output; docs/export.md decodes it in a few lines of numpy.

LiteRT files have a fixed batch size: the recurrent layers' loops convert to LiteRT's built-in
ops only with static shapes (a dynamic batch needs TensorFlow's Flex ops, which the LiteRT
runtime lacks).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import tensorflow as tf

from ocr_core.bundle.folder import Bundle
from ocr_core.bundle.format import CAPTCHA

METADATA_KEY = "ocr_pipeline"
INPUT_NAME = "image"


def network_metadata(bundle: Bundle) -> dict[str, Any]:
    """What a reader of the bare network needs: kind, input, output, vocabulary or classes."""
    info = bundle.info
    common = {"kind": bundle.kind, "recipe": bundle.recipe, "input_name": INPUT_NAME,
              "input": info["input"] | {"dtype": "float32", "scale": "0-1"},
              "training_data_sha256": info["training_data_sha256"],
              "package_version": info.get("package_version"), "created": info.get("created")}
    if bundle.kind == CAPTCHA:
        return common | {
            "output": "logits", "output_shape": "(batch, time, classes)",
            "vocabulary": info["vocabulary"], "blank_index": info["blank_index"],
            "decoding": "greedy CTC: argmax per time step, merge repeats, drop the blank; "
                        "class i > 0 is vocabulary[i - 1]"}
    return common | {"output": info["output"], "output_shape": "(batch, classes)",
                     "classes": info["classes"]}


def _signature(bundle: Bundle, batch_size: int | None) -> list[tf.TensorSpec]:
    return [tf.TensorSpec((batch_size, *bundle.model.input_shape[1:]), tf.float32, name=INPUT_NAME)]


def write_onnx(bundle: Bundle, path: Path) -> Path:
    """`bundle`'s network as ONNX at `path` (dynamic batch), its output named by what it is."""
    import onnx

    with warnings.catch_warnings():  # Keras's tf2onnx patch probes numpy's removed aliases
        warnings.simplefilter("ignore", FutureWarning)
        bundle.model.export(str(path), format="onnx", verbose=False,
                            input_signature=_signature(bundle, None))
    model = onnx.load(str(path))
    metadata = network_metadata(bundle)
    _rename_output(model.graph, metadata["output"])
    for key, value in {METADATA_KEY: json.dumps(metadata)}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def _rename_output(graph: Any, name: str) -> None:
    """Call the graph's only output `name` (tf2onnx names it after a TensorFlow tensor)."""
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [name if output == old else output for output in node.output]
        node.input[:] = [name if value == old else value for value in node.input]
    graph.output[0].name = name


def write_litert(bundle: Bundle, path: Path, batch_size: int = 1) -> Path:
    """`bundle`'s network as a LiteRT (.tflite) file at `path` for batches of `batch_size`."""
    from ocr_core.compat import tflite_with_metadata

    if path.suffix != ".tflite":
        raise ValueError(f"a LiteRT file's name must end in .tflite: {path}")
    # Built-in ops only: a file that needs TensorFlow's Flex ops would not run on LiteRT.
    bundle.model.export(str(path), format="litert", verbose=False,
                        input_signature=_signature(bundle, batch_size),
                        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    metadata = json.dumps(network_metadata(bundle) | {"batch_size": batch_size}).encode()
    path.write_bytes(tflite_with_metadata(path.read_bytes(), {METADATA_KEY: metadata}))
    return path
