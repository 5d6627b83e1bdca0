"""Renamed recipes: an old name is refused with a message that names the new one.

Its own module so that the parameters (`ocr_core.config`) and the recipes' input sizes can both
check names without tying each other's steps together in the cache keys.
"""

from __future__ import annotations

RENAMED_RECIPES = {"seed": "keras_example"}


def check_recipe_name(name: object) -> object:
    """`name`, unless it is a renamed recipe's old name."""
    if name in RENAMED_RECIPES:
        raise ValueError(f"the recipe {name!r} is now called {RENAMED_RECIPES[name]!r}")
    return name
