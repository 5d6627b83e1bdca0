"""The learned-nothing check both model kinds' `check_*learned` tasks run.

Apart from the training loop so that checking a cached model loads neither Keras nor TensorFlow.
"""

from __future__ import annotations

from ocr_core.errors import TrainingError


def require_learning(
    best_accuracy: float, min_accuracy: float, model_path: str,
    measure: str = "validation sequence accuracy",
) -> None:
    """Refuse a model whose best validation accuracy (`measure`) is below `min_accuracy`.

    Raises:
        TrainingError: naming both figures, where the model was kept, and what to try.
    """
    if best_accuracy < min_accuracy:
        raise TrainingError(
            f"the model did not learn: best {measure} {100 * best_accuracy:.1f}% "
            f"is below min_val_accuracy {100 * min_accuracy:.1f}% (model kept for inspection at "
            f"{model_path}, not reported as this run's model); try more data, more training "
            "(--epochs), or --min-val-accuracy 0 to accept it"
        )
