import numpy as np
from PIL import Image

from ocr_core.captcha.plots import plot_history, plot_predictions, plot_samples


def _images(n):
    rng = np.random.default_rng(0)
    return [rng.random((128, 32, 1)) for _ in range(n)]


def _is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 100


def test_sample_grid(tmp_path):
    path = plot_samples(_images(16), [f"{i:05d}" for i in range(16)], tmp_path / "s.png")
    assert _is_png(path)


def test_prediction_grid_marks_wrong_ones(tmp_path):
    path = plot_predictions(_images(5), ["abcde", "xbcde", "b", "c", "d"],
                            ["abcde", "abcde", "b", "c", "e"], tmp_path / "p.png")
    assert _is_png(path)


def test_history_plot(tmp_path):
    history = {"loss": [9.0, 3.0, 1.0], "val_loss": [10.0, 4.0, 2.0],
               "val_sequence_accuracy": [0.0, 0.5, 0.9]}
    assert _is_png(plot_history(history, tmp_path / "h.png"))
    assert [p.name for p in tmp_path.iterdir()] == ["h.png"]  # no temporary left behind
