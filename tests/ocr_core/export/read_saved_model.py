"""Read images with an exported SavedModel in plain TensorFlow, where this project and Keras
cannot be imported: `python -I read_saved_model.py EXPORT OUT.json IMAGE...`."""

import sys

for blocked in ("ocr_core", "tasks", "flows", "keras", "tf_keras"):
    sys.modules[blocked] = None  # an import of any of them raises ImportError

import json  # noqa: E402

import tensorflow as tf  # noqa: E402


def main(export: str, out: str, images: list[str]) -> None:
    serve = tf.saved_model.load(export).signatures["serving_default"]
    outputs = serve(images=tf.constant([open(path, "rb").read() for path in images]))
    result = {name: value.numpy().tolist() for name, value in outputs.items()}
    for name in ("text", "digit"):
        if name in result:
            result[name] = [value.decode() for value in result[name]]
    try:
        import keras  # noqa: F401
    except ImportError:
        result["keras_importable"] = False
    else:
        result["keras_importable"] = True
    with open(out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
