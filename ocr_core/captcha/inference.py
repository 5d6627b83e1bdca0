"""Read captchas with a bundle: predictions for files, and scores against labels in file names."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from ocr_core.bundle.folder import Bundle
from ocr_core.captcha.ctc import decode_texts
from ocr_core.captcha.metrics import character_error_rate, sequence_accuracy
from ocr_core.captcha.pipeline import decode_image, decode_resized, to_model_layout
from ocr_core.data.dataset import label_of, list_pngs
from ocr_core.errors import DataError
from ocr_core.storage import is_url, open_root, root_url

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One image read by a model."""

    path: str
    text: str
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given and the PNGs inside given folders, each checked to be a PNG.

    Raises:
        DataError: a path does not exist or a file is not a PNG.
    """
    paths = list_inputs(inputs)
    check_pngs(paths)
    return paths


def list_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given and the PNGs inside given folders, without opening them.

    Raises:
        DataError: a path does not exist, or a folder holds no PNG.
    """
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            paths += list_pngs(item)
        elif item.is_file():
            paths.append(item)
        else:
            raise DataError(f"no such file or folder: {item}")
    return paths


def list_input_locations(inputs: Iterable[str | Path]) -> list[str]:
    """`list_inputs` for paths and store URLs alike: the files given and the PNGs directly in
    the given folders (by name, hidden ones left out), as paths or URLs; nothing is opened or
    downloaded (one listing per store folder).

    Raises:
        DataError: an input does not exist, or a folder holds no PNG (the message names it).
        StorageError: the store cannot be used: no such bucket, access denied (naming the URL).
    """
    found: list[str] = []
    for item in inputs:
        url = root_url(item)
        if not is_url(url):
            found += [str(path) for path in list_inputs([url])]
            continue
        files = open_root(url).files()
        if "" in files:
            found.append(url)
            continue
        if not files:
            raise DataError(f"no such file or folder: {url}")
        names = sorted(name for name in files if "/" not in name and name.lower().endswith(".png"))
        if not names:
            raise DataError(f"no .png files in {url}")
        found += [f"{url}/{name}" for name in names]
    return found


def check_pngs(paths: Iterable[Path]) -> None:
    """Raise DataError naming the first of `paths` that is missing or does not start as a PNG."""
    for path in paths:
        try:
            with open(path, "rb") as handle:
                signature = handle.read(8)
        except OSError as error:
            raise DataError(f"cannot read {path}: {error.strerror}") from None
        if signature != PNG_SIGNATURE:
            raise DataError(f"not a PNG file: {path}")


def _read(path: Path, height: int, width: int) -> tf.Tensor:
    try:
        return decode_image(tf.constant(path.read_bytes()), height, width)
    except tf.errors.InvalidArgumentError as error:
        raise DataError(f"cannot decode {path}: {error.message.splitlines()[0]}") from None


def image_batches(paths: Sequence[Path], height: int, width: int, batch_size: int) -> tf.data.Dataset:
    """The PNGs at `paths`, in order, as (batch, width, height, 1) float32 batches.

    Files are read, decoded and resized in parallel and prefetched while the model runs; the
    per-pixel steps that do not depend on the image size run once per batch (fewer op calls).
    """
    dataset = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    dataset = dataset.map(lambda path: decode_resized(tf.io.read_file(path), height, width),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size).map(to_model_layout, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


# One graph function per loaded model: every predict_files call on it reuses it.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_model(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """`model` in inference mode as a graph function: (batch, width, height, 1) -> logits.

    One trace serves every batch size (the batch axis is left open), with no Python per layer.
    The weights are frozen into the graph as constants, so TensorFlow's graph optimiser folds
    each batch normalisation into its convolution (about 20% less CPU per image here); where
    freezing fails, the traced function is used as it is. The weights are read once, at the
    first call for `model`: this is for loaded bundles, not for a model that is still training.
    """
    if model not in _COMPILED:
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        traced = tf.function(lambda images: model([images], training=False), input_signature=[spec])
        _COMPILED[model] = _frozen(traced) or traced
    return _COMPILED[model]


def _frozen(traced) -> Callable[[tf.Tensor], tf.Tensor] | None:
    try:
        from ocr_core.compat import freeze_function

        level = tf.get_logger().level
        tf.get_logger().setLevel("ERROR")  # a harmless warning about lookup-table initialisers
        try:
            frozen = freeze_function(traced.get_concrete_function())
        finally:
            tf.get_logger().setLevel(level)
    except Exception as error:  # a private TensorFlow API (see compat): never break reading
        logger.info("reading with the unfrozen model (%s)", error)
        return None

    def call(images) -> tf.Tensor:
        outputs = frozen(tf.convert_to_tensor(images, tf.float32))  # numpy in, too
        return outputs[0] if isinstance(outputs, list | tuple) else outputs

    return call


def _culprit(paths: Sequence[Path], height: int, width: int, error: tf.errors.OpError) -> DataError:
    """The error naming the first file of `paths` that cannot be read (tf.data does not say)."""
    for path in paths:
        if not path.is_file():
            return DataError(f"no such file: {path}")
        try:
            _read(path, height, width)  # raises DataError naming the file
        except OSError as os_error:
            return DataError(f"cannot read {path}: {os_error.strerror}")
    return DataError(f"cannot read images: {error.message.splitlines()[0]}")


def predict_files(
    bundle: Bundle, paths: Sequence[Path], *, batch_size: int = 64,
    strategy: str = "greedy", beam_width: int = 16,
) -> list[Prediction]:
    """Read every image in `paths` with `bundle`, in order.

    Args:
        bundle: the model and its vocabulary and input size.
        paths: PNG files (see `expand_inputs`).
        batch_size: images per model call.
        strategy: CTC decoding, "greedy" or "beam_search".
        beam_width: beams kept by beam_search.

    Raises:
        DataError: a file cannot be read or decoded (the message names it).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return []
    model = compiled_model(bundle.model)
    # One batch shape per call: the last batch is padded, so oneDNN never sets up a second shape.
    batch_size = min(batch_size, len(paths))
    texts: list[str] = []
    confidences: list[float] = []
    batches = iter(image_batches(paths, bundle.height, bundle.width, batch_size))
    while len(texts) < len(paths):
        try:
            images = next(batches)  # (n <= batch_size, width, height, 1)
        except tf.errors.OpError as error:
            raise _culprit(paths[len(texts):], bundle.height, bundle.width, error) from None
        count = int(images.shape[0])
        if count < batch_size:
            images = tf.pad(images, [[0, batch_size - count], [0, 0], [0, 0], [0, 0]])
        batch_texts, batch_confidences = decode_texts(
            model(images).numpy()[:count], bundle.vocabulary, strategy, beam_width)
        texts += batch_texts
        confidences += batch_confidences.tolist()
    return [Prediction(str(p), t, float(c))
            for p, t, c in zip(paths, texts, confidences, strict=True)]


@dataclass(frozen=True)
class Evaluation:
    """Scores of predictions against the labels in the file names."""

    count: int
    sequence_accuracy: float
    character_error_rate: float
    misreads: list[dict]

    def as_dict(self) -> dict:
        return asdict(self)


def score(predictions: Sequence[Prediction]) -> Evaluation:
    """Compare each prediction to the label its file name carries."""
    texts = [p.text for p in predictions]
    truths = [label_of(p.path) for p in predictions]
    misreads = [{"path": p.path, "truth": t, "prediction": p.text, "confidence": p.confidence}
                for p, t in zip(predictions, truths, strict=True) if p.text != t]
    return Evaluation(len(predictions), sequence_accuracy(texts, truths),
                      character_error_rate(texts, truths), misreads)

