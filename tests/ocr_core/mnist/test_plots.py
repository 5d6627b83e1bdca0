import numpy as np
from PIL import Image

from ocr_core.mnist.plots import plot_confusion_matrix, plot_digit_grid, plot_misclassified


def _size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_digit_grid_grows_with_rows(tmp_path, mnist_arrays):
    images, labels = mnist_arrays[0], mnist_arrays[1]
    full = plot_digit_grid(images[:36], [str(x) for x in labels[:36]], tmp_path / "a.png")
    one_row = plot_digit_grid(images[:6], [str(x) for x in labels[:6]], tmp_path / "b.png")
    assert _size(full)[1] > 3 * _size(one_row)[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp files left


def test_confusion_matrix_plot(tmp_path):
    matrix = np.diag(np.full(10, 980)) + 2
    path = plot_confusion_matrix(matrix, tmp_path / "confusion.png", title="test")
    width, height = _size(path)
    assert width > 300 and height > 300


def test_misclassified_with_and_without_mistakes(tmp_path, mnist_arrays):
    images = mnist_arrays[2][:4]
    some = plot_misclassified(images, np.array([1, 2, 3, 4]), np.array([7, 7, 7, 7]),
                              tmp_path / "some.png")
    none = plot_misclassified(images[:0], np.array([]), np.array([]), tmp_path / "none.png")
    assert _size(some)[1] > _size(none)[1]
