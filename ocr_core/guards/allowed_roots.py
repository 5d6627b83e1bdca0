"""Allowed roots: the folders a served flow run may read and write, and the check of every path.

A flow run started by the Prefect server (a deployment's form, an automation, a schedule) takes
its parameters from whoever can reach the server, so its paths are confined: each one, after
symbolic links are resolved, must lie under one of the allowed roots, and the results root must be
the one the deployment was served with. Local CLI runs are not confined. The roots are the
served results root and the folders in `$OCR_PIPELINE_ALLOWED_ROOTS` (separated by `os.pathsep`);
`ocr-pipeline serve` sets that to the folders it was given unless the administrator set it.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ocr_core.errors import ConfigError
from ocr_core.layout import default_results_dir
from ocr_core.storage import is_url, root_url

LOCATION = "location"
"""Metadata marking a string field as a location (`ocr_core.config.common.Location`)."""

ALLOWED_ROOTS_ENV = "OCR_PIPELINE_ALLOWED_ROOTS"


def allowed_roots(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The allowed roots, resolved: the served results root, then `$OCR_PIPELINE_ALLOWED_ROOTS`
    (folders, or store URLs such as `s3://bucket/prefix`)."""
    given = [part for part in split_roots(environ.get(ALLOWED_ROOTS_ENV, "")) if part.strip()]
    return list(dict.fromkeys(_resolved(root) for root in [default_results_dir(), *given]))


def split_roots(setting: str) -> list[str]:
    """The roots of a `$OCR_PIPELINE_ALLOWED_ROOTS` value: split at `os.pathsep`, except the
    colon of a URL's `scheme://`."""
    if os.pathsep != ":":
        return setting.split(os.pathsep)
    return re.split(r":(?!//)", setting)


def roots_setting(folders: list[str | Path]) -> str:
    """`folders` as a value of `$OCR_PIPELINE_ALLOWED_ROOTS` (resolved, without repeats)."""
    return os.pathsep.join(dict.fromkeys(_resolved(folder) for folder in folders))


def _resolved(location: str | Path) -> str:
    """A store URL in canonical form, or a path made absolute with symbolic links resolved."""
    url = root_url(location)
    return url if is_url(url) else str(Path(url).resolve())


def check_under_roots(location: str | Path, roots: Sequence[str | Path], parameter: str) -> str:
    """`location` resolved (symbolic links followed) if it lies under one of `roots`.

    Raises:
        ConfigError: naming the parameter, the location and the allowed roots.
    """
    resolved = _resolved(location)
    if is_url(resolved) and {".", ".."} & set(resolved.split("://", 1)[1].split("/")):
        # A store key is literal, but a proxy or another S3 server may collapse `..`: a served
        # run's URL must be under its root as written.
        raise ConfigError(f"{parameter}={location} has a '.' or '..' segment: a served run "
                          "names store locations without them")
    roots = [str(root) for root in roots]
    if any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in roots):
        return resolved
    shown = os.pathsep.join(roots)
    raise ConfigError(
        f"{parameter}={location} is outside the allowed roots of a served run ({shown}); "
        f"an administrator can widen them with {ALLOWED_ROOTS_ENV} on the serving process")


def path_parameters(params: BaseModel, prefix: str = "") -> Iterator[tuple[str, str | Path]]:
    """Every path or location in `params` as (parameter name, value): Path fields, `Location`
    fields, lists of them, nested models."""
    for name, field in type(params).model_fields.items():
        value = getattr(params, name)
        label = f"{prefix}{name}"
        if isinstance(value, Path) or (isinstance(value, str) and _is_location(field)):
            yield label, value
        elif isinstance(value, BaseModel):
            yield from path_parameters(value, f"{label}.")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Path) or (isinstance(item, str) and _is_location(field)):
                    yield f"{label}[{index}]", item


def _is_location(field: FieldInfo) -> bool:
    """Whether a field is a `Location`, an optional one or a list of them."""
    arms = [field.annotation, *typing.get_args(field.annotation)]
    arms += [inner for arm in arms if typing.get_origin(arm) in (list, tuple)
             for inner in typing.get_args(arm)]
    return LOCATION in field.metadata or any(
        LOCATION in getattr(arm, "__metadata__", ()) for arm in arms)


def check_served_paths(params: BaseModel, roots: list[str] | None = None,
                       results_root: str | Path | None = None) -> None:
    """Refuse a served run's parameters unless every path lies under the allowed roots and the
    results root (if the model has one) is the served one.

    Args:
        params: the run's parameters (any model; every Path and Location field is checked).
        roots: the allowed roots (default: `allowed_roots()`).
        results_root: the results root the deployment was served with (default:
            `$OCR_PIPELINE_RESULTS` of this process, which `serve` and the worker pass on).

    Raises:
        ConfigError: for the first path outside, before any work is done.
    """
    roots = allowed_roots() if roots is None else roots
    served_root = _resolved(results_root or default_results_dir())
    results_dir = getattr(params, "results_dir", None)
    if results_dir is not None and _resolved(results_dir) != served_root:
        raise ConfigError(
            f"results_dir={results_dir} is not this deployment's results root ({served_root}): a "
            "served run writes under the root it was served with")
    for parameter, path in path_parameters(params):
        check_under_roots(path, roots, parameter)
