import math

import keras
import numpy as np
import pytest

from ocr_core.mnist.evaluation import confusion_matrix, evaluate_digits


def test_confusion_matrix_rows_are_truth():
    matrix = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def _constant_model(activation):
    """Ignores the image: bias log(2) for class 3, 0 elsewhere -> p(3) = 2/11, others 1/11."""
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(10, activation=activation, kernel_initializer="zeros")(
        keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    kernel, bias = model.layers[-1].get_weights()
    bias[3] = math.log(2)
    model.layers[-1].set_weights([kernel, bias])
    return model


@pytest.mark.parametrize(("activation", "from_logits"), [(None, True), ("softmax", False)])
def test_scores_computed_by_hand(activation, from_logits):
    images = np.zeros((4, 28, 28), np.uint8)
    labels = np.array([3, 3, 1, 0])
    result = evaluate_digits(_constant_model(activation), images, labels, from_logits=from_logits,
                             batch_size=3)
    assert result.predictions.tolist() == [3, 3, 3, 3]
    assert result.accuracy == 0.5
    assert result.error_percent == pytest.approx(50.0)
    assert result.loss == pytest.approx((2 * math.log(11 / 2) + 2 * math.log(11)) / 4, rel=1e-5)
    assert result.count == 4
    assert result.confusion[3, 3] == 2 and result.confusion[1, 3] == 1 and result.confusion[0, 3] == 1
    summary = result.as_dict()
    assert summary["confusion_matrix"][3][3] == 2 and summary["error_percent"] == 50.0
