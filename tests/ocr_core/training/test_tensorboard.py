"""TensorBoard events of a training: per-epoch figures from the logs, the learning rate, decoded
validation samples; a training resumed after a kill continues its curves."""

import numpy as np
import pytest
import tensorflow as tf

from ocr_core.captcha.ctc import Vocabulary
from ocr_core.captcha.models import get_recipe
from ocr_core.captcha.pipeline import load_split, save_split
from ocr_core.captcha.training import MONITOR, TrainingPlan, train_captcha_model
from ocr_core.data import dataset as ds
from ocr_core.training.tensorboard import TensorBoardLog, captcha_samples, digit_samples
from tests.ocr_core.training.callbacks import Interrupt


def events(folder) -> dict[str, list[tuple[int, object]]]:
    """Every tag's (step, value) pairs in the event files of `folder`, in writing order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: [(event.step, tf.make_ndarray(event.tensor_proto))
                  for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


@pytest.mark.slow
def test_a_resumed_training_continues_its_tensorboard_curves(tmp_path, captcha_dir):
    records = ds.index_images(ds.list_pngs(captcha_dir))
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
    recipe = get_recipe("crnn")
    for name, part in (("train", records[:32]), ("validation", records[32:])):
        save_split(part, vocabulary, tmp_path / name, height=recipe.height, width=recipe.width,
                   max_label_length=5)
    validation = load_split(tmp_path / "validation", 16)
    logs = tmp_path / "bundle.tensorboard"

    def run(*callbacks):
        board = TensorBoardLog(logs, captcha_samples(validation, vocabulary, count=3))
        return train_captcha_model(
            recipe, vocabulary, load_split(tmp_path / "train", 16, shuffle=True, seed=0),
            validation, plan=TrainingPlan(batch_size=16, epochs=3, patience=3, start_from_epoch=0),
            seed=0, callbacks=[board, *callbacks], backup_dir=tmp_path / "work")

    with pytest.raises(KeyboardInterrupt):
        run(Interrupt(2))
    assert [step for step, _ in events(logs)[MONITOR]] == [1, 2]
    result = run()
    written = events(logs)
    for name in (MONITOR, "val_sequence_accuracy", "loss", "val_loss", "epoch_seconds"):
        assert [step for step, _ in written[name]] == [1, 2, 3], name
    assert [float(value) for _, value in written[MONITOR]] == pytest.approx(result.history[MONITOR])
    rates = [float(value) for _, value in written["learning_rate"]]
    assert rates[0] != rates[-1]  # the crnn recipe's warm-up and cosine decay, epoch by epoch
    table = written["validation_samples"][-1][1].item().decode()
    assert table.startswith("| truth | read | right |") and len(table.splitlines()) == 2 + 3
    truths = [row.split("|")[1].strip() for row in table.splitlines()[2:]]
    assert truths == [r.label for r in records[32:35]]


def test_digit_samples_pair_each_truth_with_the_models_reading():
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    images = np.zeros((4, 28, 28), np.uint8)
    labels = np.array([3, 1, 4, 1])
    read = digit_samples(images, labels, [str(d) for d in range(10)], count=3)(model)
    expected = str(int(np.asarray(model(np.zeros((1, 28, 28, 1)))).argmax()))
    assert read == [("3", expected), ("1", expected), ("4", expected)]
