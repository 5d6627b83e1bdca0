"""Read captchas with one exported model in plain TensorFlow / ONNX Runtime / LiteRT, with this
project and Keras unimportable; print texts and timings as JSON (used by export_equivalence.py).

    python -I bench/export_readers.py saved_model|onnx|litert EXPORT BATCH_SIZE IMAGE...

Each image goes from its PNG bytes (in memory) to a text: the SavedModel does it all in its
graph; for ONNX and LiteRT the input is prepared with TensorFlow's image ops, as `predict` does
(decode_png grey, float in [0, 1], bilinear resize, clip, width-major), and the logits are
decoded greedily in numpy from the vocabulary in the file's metadata (docs/export.md).
"""

import sys

for blocked in ("ocr_core", "tasks", "flows", "keras", "tf_keras"):
    sys.modules[blocked] = None

import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def model_inputs(images: list[bytes], height: int, width: int) -> np.ndarray:
    """(batch, width, height, 1) float32, as predict prepares captchas."""
    decoded = [tf.image.resize(tf.image.convert_image_dtype(tf.io.decode_png(data, channels=1),
                                                            tf.float32), [height, width])
               for data in images]
    return tf.transpose(tf.clip_by_value(tf.stack(decoded), 0.0, 1.0), [0, 2, 1, 3]).numpy()


def greedy(logits: np.ndarray, vocabulary: str, blank: int) -> list[str]:
    best = logits.argmax(axis=-1)  # (batch, time)
    new = np.ones_like(best, dtype=bool)
    new[:, 1:] = best[:, 1:] != best[:, :-1]
    table = np.array(["", *vocabulary])
    return ["".join(table[row[keep & (row != blank)]]) for row, keep in zip(best, new, strict=True)]


def saved_model_reader(path: str, batch_size: int):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    return lambda images: [t.decode() for t in serve(images=tf.constant(images))["text"].numpy()]


def onnx_reader(path: str, batch_size: int):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["ocr_pipeline"])
    size = meta["input"]

    def read(images):
        logits = session.run(["logits"], {"image": model_inputs(images, size["height"],
                                                                size["width"])})[0]
        return greedy(logits, meta["vocabulary"], meta["blank_index"])

    return read


def litert_reader(path: str, batch_size: int):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    model = schema.Model.GetRootAs(open(path, "rb").read())
    index = next(model.Metadata(i).Buffer() for i in range(model.MetadataLength())
                 if model.Metadata(i).Name() == b"ocr_pipeline")
    meta = json.loads(model.Buffers(index).DataAsNumpy().tobytes())
    assert meta["batch_size"] == batch_size, (meta["batch_size"], batch_size)
    interpreter = Interpreter(model_path=path, num_threads=2)
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    size = meta["input"]

    def read(images):
        inputs = model_inputs(images, size["height"], size["width"])
        count = len(inputs)
        if count < batch_size:  # the file's batch is fixed: pad the last one
            inputs = np.concatenate([inputs, np.zeros((batch_size - count, *inputs.shape[1:]),
                                                      inputs.dtype)])
        interpreter.set_tensor(source["index"], inputs)
        interpreter.invoke()
        return greedy(interpreter.get_tensor(target["index"])[:count], meta["vocabulary"],
                      meta["blank_index"])

    return read


def main(kind: str, path: str, batch_size: int, files: list[str]) -> None:
    images = [open(name, "rb").read() for name in files]
    read = {"saved_model": saved_model_reader, "onnx": onnx_reader,
            "litert": litert_reader}[kind](path, batch_size)
    read(images[:batch_size])  # warm-up: graph tracing, memory plans
    start = time.perf_counter()
    texts = []
    for first in range(0, len(images), batch_size):
        texts += read(images[first:first + batch_size])
    seconds = time.perf_counter() - start
    print(json.dumps({"texts": texts, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
