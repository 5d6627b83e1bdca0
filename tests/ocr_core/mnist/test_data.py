import numpy as np
import pytest

from ocr_core.errors import DataError
from ocr_core.mnist.data import DigitArrays, load_arrays, save_arrays, split_validation


def _arrays(train=6, test=4):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (train, 28, 28), dtype=np.uint8), np.arange(train) % 10,
            rng.integers(0, 256, (test, 28, 28), dtype=np.uint8), np.arange(test) % 10]


class TestChecked:
    def test_canonical_layout(self):
        arrays = DigitArrays.checked("x", *_arrays())
        assert arrays.x_train.shape == (6, 28, 28)
        assert arrays.y_train.dtype == np.uint8
        assert arrays.counts == {"train": 6, "test": 4}

    def test_channel_axis_is_dropped(self):
        x_train, y_train, x_test, y_test = _arrays()
        arrays = DigitArrays.checked("tfds", x_train[..., None], y_train, x_test[..., None], y_test)
        assert arrays.x_test.shape == (4, 28, 28)

    @pytest.mark.parametrize(("index", "value", "message"), [
        (0, np.zeros((6, 32, 32), np.uint8), r"train images have shape \(6, 32, 32\)"),
        (0, np.zeros((6, 28, 28), np.float32), "train images are float32; expected uint8"),
        (1, np.arange(5), r"6 train images but labels of shape \(5,\)"),
        (3, np.array([0, 1, 2, 10]), "test labels must be integers 0-9"),
        (3, np.array([0.0, 1.0, 2.0, 3.0]), "test labels must be integers 0-9"),
        (2, np.zeros((0, 28, 28), np.uint8), "labels of shape"),
    ])
    def test_bad_arrays_name_origin_and_problem(self, index, value, message):
        values = _arrays()
        values[index] = value
        with pytest.raises(DataError, match=message) as error:
            DigitArrays.checked("my-copy", *values)
        assert str(error.value).startswith("my-copy:")


class TestSaveLoad:
    def test_round_trip_keeps_content_and_digest(self, tmp_path):
        arrays = DigitArrays.checked("x", *_arrays())
        path = save_arrays(arrays, tmp_path / "deep" / "mnist.npz")
        again = load_arrays(path)
        np.testing.assert_array_equal(again.x_train, arrays.x_train)
        np.testing.assert_array_equal(again.y_test, arrays.y_test)
        assert again.digest() == arrays.digest()
        assert [p.name for p in path.parent.iterdir()] == ["mnist.npz"]

    def test_digest_sees_one_pixel(self):
        values = _arrays()
        before = DigitArrays.checked("x", *values).digest()
        values[2] = values[2].copy()
        values[2][3, 27, 27] ^= 1
        assert DigitArrays.checked("x", *values).digest() != before

    def test_missing_array_is_named(self, tmp_path):
        path = tmp_path / "partial.npz"
        x_train, y_train, _, _ = _arrays()
        np.savez(path, x_train=x_train, y_train=y_train)
        with pytest.raises(DataError, match=r"missing arrays \['x_test', 'y_test'\]"):
            load_arrays(path)

    def test_not_an_npz(self, tmp_path):
        path = tmp_path / "mnist.npz"
        path.write_text("hello")
        with pytest.raises(DataError, match="cannot read .* as .npz"):
            load_arrays(path)


class TestSplitValidation:
    def test_disjoint_complete_and_sized(self):
        images = np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
        labels = np.arange(100) % 10
        (train_x, train_y), (val_x, val_y) = split_validation(images, labels, 0.1, seed=1)
        assert len(val_y) == 10 and len(train_y) == 90
        seen = sorted(train_x[:, 0, 0].tolist() + val_x[:, 0, 0].tolist())
        assert seen == list(range(100))
        np.testing.assert_array_equal(val_y, val_x[:, 0, 0] % 10)  # pairs stay together

    def test_seeded(self):
        images, labels = np.zeros((50, 28, 28), np.uint8), np.arange(50)
        first = split_validation(images, labels, 0.2, seed=3)[1][1]
        assert first.tolist() == split_validation(images, labels, 0.2, seed=3)[1][1].tolist()
        assert first.tolist() != split_validation(images, labels, 0.2, seed=4)[1][1].tolist()

    def test_too_few_images(self):
        with pytest.raises(DataError, match="1 training images are too few"):
            split_validation(np.zeros((1, 28, 28), np.uint8), np.zeros(1), 0.1, seed=0)
