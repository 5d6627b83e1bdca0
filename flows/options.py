"""Click options generated from a pydantic parameters model, so the CLI and the flows share one type.

Only the flags a user gives are passed to the model; everything else takes the model's default,
so `--help`, the Prefect UI form and the flow all show the same defaults and descriptions.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel, ValidationError


class CommaSeparated(click.ParamType):
    """A list option: `--x a,b`, or `--x a --x b` with `multiple=True`; each item checked by `item`."""

    def __init__(self, item: click.ParamType) -> None:
        self.item = item
        self.name = f"{item.name} list"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return f"{self.item.get_metavar(param, ctx) or self.item.name.upper()},..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list:
        if isinstance(value, list):
            return value
        return [self.item.convert(part.strip(), param, ctx)
                for part in str(value).split(",") if part.strip()]


class LiteralChoice(click.Choice):
    """A choice whose help lists the allowed values but leaves checking to the parameters model,
    whose message can say more than "not one of" (a renamed value names its new name)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is_boolean_flag) for a field annotation; Optional[X] is treated as X."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        item, _ = _click_type(args[0])
        return CommaSeparated(click.types.convert_type(item)), False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _click_type(inner[0]) if len(inner) == 1 else (str, False)
    if typing.get_origin(annotation) is typing.Annotated:
        return _click_type(args[0])
    if typing.get_origin(annotation) is Literal:
        return LiteralChoice([str(a) for a in args]), False
    if annotation is bool:
        return bool, True
    if annotation is Path:
        return click.Path(path_type=Path), False
    return annotation if annotation in (int, float, str) else str, False


def _default_text(field: Any) -> str | None:
    if field.is_required() or field.default_factory is not None or field.default is None:
        return None
    return str(field.default)


def model_options(model: type[BaseModel], exclude: tuple[str, ...] = ()) -> Callable:
    """Decorate a click command with one option per field of `model`."""

    def decorate(command: Callable) -> Callable:
        for name, field in reversed(model.model_fields.items()):
            if name in exclude:
                continue
            flag = "--" + name.replace("_", "-")
            kind, is_flag = _click_type(field.annotation)
            help_text = field.description or ""
            if (default := _default_text(field)) is not None:
                help_text += f"  [default: {default}]"
            elif field.is_required():
                help_text += "  [required]"
            if is_flag:
                command = click.option(f"{flag}/--no-{name.replace('_', '-')}", name,
                                       default=None, help=help_text)(command)
            elif isinstance(kind, CommaSeparated):
                command = click.option(flag, name, type=kind, multiple=True,
                                       help=help_text + "  (comma-separated or repeated)")(command)
            else:
                command = click.option(flag, name, type=kind, default=None,
                                       help=help_text)(command)
        return command

    return decorate


def build_params(model: type[BaseModel], given: dict[str, Any]) -> BaseModel:
    """Validate the given flags into `model`; a validation error becomes a one-line usage error."""
    values = {k: _flatten(v) if isinstance(v, tuple) else v for k, v in given.items()
              if v not in (None, ()) and k in model.model_fields}
    try:
        return model(**values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = "--" + "-".join(str(p) for p in item["loc"] if not isinstance(p, int))
            location = location.replace("_", "-")
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "literal_error":
                message = f"{item['input']!r} is not allowed: {message[0].lower()}{message[1:]}"
            problems.append(message if not item["loc"] else f"{location}: {message}")
        raise click.UsageError("; ".join(problems)) from None


def _flatten(lists: tuple[list, ...]) -> list:
    """Values of a repeated list option (`--x a,b --x c`) as one list."""
    return [item for values in lists for item in values]


def params_command(model: type[BaseModel], exclude: tuple[str, ...] = ()) -> Callable:
    """Like `model_options`, and hands the command a validated `params` instead of raw flags."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(**given: Any) -> Any:
            rest = {k: v for k, v in given.items() if k not in model.model_fields}
            return command(params=build_params(model, given), **rest)

        return model_options(model, exclude)(wrapper)

    return decorate
