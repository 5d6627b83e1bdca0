"""The image size each recipe reads, kept apart from the model code.

Preparing a recipe's datasets depends on its input size, not on how its model is built: an edit
to `ocr_core.captcha.models` retrains without preprocessing the data again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocr_core.captcha.recipe_names import check_recipe_name


@dataclass(frozen=True)
class InputSize:
    """Images are resized to `width` x `height` pixels, one grey channel."""

    height: int
    width: int


INPUT_SIZES: dict[str, InputSize] = {
    "crnn": InputSize(height=32, width=128),
    "keras_example": InputSize(height=50, width=200),
}


def input_size(recipe: str) -> InputSize:
    """The input size of the recipe called `recipe`."""
    try:
        return INPUT_SIZES[check_recipe_name(recipe)]
    except KeyError:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(INPUT_SIZES)}") from None
