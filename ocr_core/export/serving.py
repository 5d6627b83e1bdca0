"""The SavedModel a serving engine loads: encoded images in, what the model read out.

`serving_default` takes a batch of encoded images (tf.string: PNG, JPEG, GIF or BMP bytes) and
runs everything `predict` does inside the graph, so plain TensorFlow or TF Serving needs no
code of this project:

    captcha bundle   decode -> grey -> float in [0, 1] -> resize (bilinear) -> clip -> (width,
                     height, 1) -> model logits -> greedy CTC decoding (`ocr_core.captcha.ctc`)
                     outputs: text (tf.string), confidence (float32, the best path's probability)
    digits bundle    decode -> grey -> float in [0, 1] -> resize to 28x28 -> model -> softmax
                     (logits models) outputs: digit (tf.string, the class name), confidence
                     (float32), probabilities (float32, (batch, classes))

Decoding and resizing are the ones `ocr_core.captcha.pipeline` uses (for PNG bytes,
`decode_image` is `decode_png`), so texts and digits equal `predict`'s.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from ocr_core.bundle.folder import Bundle
from ocr_core.bundle.format import CAPTCHA
from ocr_core.captcha.ctc import BLANK_INDEX
from ocr_core.captcha.pipeline import to_model_layout

SIGNATURE = "serving_default"
IMAGES = tf.TensorSpec([None], tf.string, name="images")  # (batch,) encoded images


def _decoded(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """(batch,) encoded images -> (batch, height, width, 1) float32 in [0, 1] (before clipping)."""

    def one(data: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(data, channels=1, expand_animations=False)  # grey
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.image.resize(image, [height, width])

    return tf.map_fn(one, images, fn_output_signature=tf.TensorSpec([height, width, 1], tf.float32))


def greedy_texts(logits: tf.Tensor, characters: str) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy CTC decoding in the graph, as `ocr_core.captcha.ctc.greedy_decode` does it.

    Args:
        logits: (batch, time, classes) model outputs; class 0 is the blank.
        characters: the vocabulary, class i + 1 = characters[i].

    Returns:
        texts: (batch,) tf.string.
        confidences: (batch,) float32, the product of each step's best class probability.
    """
    best = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (batch, time)
    previous = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    keep = tf.logical_and(tf.not_equal(best, previous), tf.not_equal(best, BLANK_INDEX))
    table = tf.constant(["", *characters])  # the blank reads as ""
    symbols = tf.gather(table, tf.where(keep, best, BLANK_INDEX))  # (batch, time)
    log_probs = tf.reduce_sum(tf.reduce_max(tf.nn.log_softmax(logits, axis=-1), axis=-1), axis=-1)
    return tf.strings.reduce_join(symbols, axis=-1), tf.exp(log_probs)


def serving_function(bundle: Bundle) -> tf.types.experimental.PolymorphicFunction:
    """The `serving_default` function of `bundle` (a tf.function over a batch of encoded images)."""
    model, height, width = bundle.model, bundle.height, bundle.width
    if bundle.kind == CAPTCHA:
        characters = bundle.info["vocabulary"]  # checked on load; no lookup tables to trace

        @tf.function(input_signature=[IMAGES])
        def read_captchas(images: tf.Tensor) -> dict[str, tf.Tensor]:
            logits = model(to_model_layout(_decoded(images, height, width)), training=False)
            text, confidence = greedy_texts(logits, characters)
            return {"text": text, "confidence": confidence}

        return read_captchas
    classes = tf.constant(bundle.info["classes"])
    from_logits = bundle.from_logits

    @tf.function(input_signature=[IMAGES])
    def read_digits(images: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(_decoded(images, height, width), training=False)  # (batch, classes)
        probabilities = tf.nn.softmax(outputs, axis=-1) if from_logits else outputs
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"digit": tf.gather(classes, best), "confidence": tf.reduce_max(probabilities, -1),
                "probabilities": probabilities}

    return read_digits


def write_saved_model(bundle: Bundle, folder: Path) -> Path:
    """Write `bundle` as a SavedModel at `folder` (which must not exist) with `serving_default`.

    Keras's `ExportArchive` (what `model.export` uses) tracks the weights; the endpoint is
    ours, since `model.export` serves the network's float input only.
    """
    archive = keras.export.ExportArchive()
    archive.track(bundle.model)
    archive.add_endpoint(SIGNATURE, serving_function(bundle))
    archive.write_out(str(folder), verbose=False)
    return folder
